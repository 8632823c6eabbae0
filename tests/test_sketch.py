"""Sketch decoding: palette-painted RGB -> class ids, robust to anti-aliasing and JPEG, loud on unknown colours."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from underpainting.data.images import DataError
from underpainting.data.labels import LabelSet
from underpainting.data.sketch import SketchFolder, decode_sketch, encode_sketch
from underpainting.data.synthetic import SyntheticLandscapes

CONF = Path(__file__).parents[1] / "conf" / "labels" / "landscape.yaml"


@pytest.fixture(scope="module")
def labels() -> LabelSet:
    return LabelSet.from_yaml(CONF)


@pytest.fixture(scope="module")
def scene(labels) -> torch.Tensor:
    return SyntheticLandscapes(labels, 96).layout(torch.Generator().manual_seed(5))


def near_edges(ids: torch.Tensor, radius: int) -> torch.Tensor:
    """Pixels within `radius` of a region boundary."""
    e = torch.zeros_like(ids, dtype=torch.bool)
    e[1:] |= ids[1:] != ids[:-1]
    e[:-1] |= ids[1:] != ids[:-1]
    e[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    e[:, :-1] |= ids[:, 1:] != ids[:, :-1]
    return F.max_pool2d(e.float()[None, None], 2 * radius + 1, 1, radius)[0, 0] > 0


def test_clean_sketch_roundtrip_any_size(labels, scene):
    assert torch.equal(decode_sketch(encode_sketch(scene, labels), labels), scene)
    wide = encode_sketch(scene[:50, :], labels)  # non-square, any size
    assert decode_sketch(wide, labels).shape == (50, 96)


def test_antialiased_edges_are_resolved_by_neighbours(labels):
    fine = SyntheticLandscapes(labels, 384).layout(torch.Generator().manual_seed(5))
    aa = encode_sketch(fine, labels).resize(
        (96, 96), Image.BOX
    )  # each pixel averages a 4x4 block: blended seams
    a = np.asarray(aa).astype(int)
    exact = (np.abs(a[..., None, :] - labels.palette.numpy()[None, None]).sum(-1) == 0).any(-1)
    assert (~exact).sum() > 200  # there really are blended pixels
    decoded = decode_sketch(aa, labels)
    # A decoded class should be one painted in that pixel's 4x4 block, not a third class that a blend lands near.
    block = F.max_pool2d(F.one_hot(fine, len(labels)).permute(2, 0, 1).float()[None], 4)[0] > 0
    third = (~block.gather(0, decoded[None])[0]).sum()
    nearest_only = decode_sketch(aa, labels, exact_tolerance=1e9)  # seam handling off
    assert third <= 5 and (~block.gather(0, nearest_only[None])[0]).sum() > 20 * max(int(third), 1)
    majority = F.avg_pool2d(F.one_hot(fine, len(labels)).permute(2, 0, 1).float()[None], 4)[0].argmax(0)
    assert (decoded != majority).float().mean() < 0.02


def test_blend_near_a_third_class_is_not_kept(labels):
    # sky|other seam: its mid colour (78,119,110) lies within tolerance of `cloud` (105,105,105).
    ids = torch.full((32, 32), labels.id("sky"))
    ids[:, 16:] = labels.id("other")
    a = np.asarray(encode_sketch(ids, labels)).copy()
    a[:, 16] = (78, 119, 110)
    decoded = decode_sketch(a, labels)
    assert labels.id("cloud") not in decoded.unique().tolist()


@pytest.mark.parametrize("quality", [75, 90])
def test_jpeg_noise(labels, scene, quality):
    buf = io.BytesIO()
    encode_sketch(scene, labels).save(buf, "JPEG", quality=quality)  # 4:2:0 chroma, as most JPEGs
    decoded = decode_sketch(Image.open(buf), labels)
    wrong = decoded != scene
    # Chroma subsampling smears colour over 2 px: boundaries may move that far, interiors must be exact.
    assert (wrong & ~near_edges(scene, 2)).sum() == 0
    assert wrong.float().mean() < 0.025


def test_unknown_colour_region_is_an_error(labels, scene, tmp_path):
    a = np.asarray(encode_sketch(scene, labels)).copy()
    a[10:30, 40:60] = (250, 0, 250)
    path = tmp_path / "bad.png"
    Image.fromarray(a).save(path)
    with pytest.raises(DataError) as err:
        decode_sketch(path, labels)
    msg = str(err.value)
    assert "bad.png" in msg and "rgb(250,0,250) x 400 px" in msg and "sky=(156,238,221)" in msg


def test_thin_unknown_line_is_a_seam_not_an_error(labels, scene):
    a = np.asarray(encode_sketch(scene, labels)).copy()
    a[:, 47] = (250, 0, 250)  # a one-pixel stray line
    decoded = decode_sketch(a, labels)
    assert (decoded != scene).sum() <= scene.shape[0]


def test_sketch_folder(labels, scene, tmp_path):
    encode_sketch(scene, labels).save(tmp_path / "a.png")
    item = SketchFolder(tmp_path, labels, size=64)[0]
    assert item["label"].shape == (64, 64) and item["path"].endswith("a.png")
