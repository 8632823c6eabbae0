"""Canvas layers -> class ids (underpainting.data.canvas): exact strokes, anti-aliased rims, eraser holes, the
unpainted fill, uploads of sketches and label maps, and the errors a bad canvas gets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from tests.conftest import ROOT
from underpainting.data.canvas import (
    decode_canvas,
    label_map_image,
    load_backdrop,
    read_sketch_upload,
    resize_ids,
    resize_layers,
    sketch_layer,
)
from underpainting.data.images import DataError
from underpainting.data.labels import LabelSet
from underpainting.data.sketch import decode_sketch, encode_sketch

EXAMPLES = ROOT / "examples" / "sketches"


def _layer(h: int = 48, w: int = 64) -> np.ndarray:
    return np.zeros((h, w, 4), np.uint8)


def _paint(layer: np.ndarray, labels: LabelSet, name: str, ys: slice, xs: slice, alpha: int = 255) -> None:
    layer[ys, xs, :3] = labels.classes[labels.id(name)].rgb
    layer[ys, xs, 3] = alpha


def test_two_strokes_decode_exactly_and_unpainted_takes_the_nearest_stroke(labels):
    layer = _layer()
    _paint(layer, labels, "sky", slice(4, 10), slice(0, 64))
    _paint(layer, labels, "grass", slice(38, 44), slice(0, 64))
    ids = decode_canvas([layer], labels)
    sky, grass = labels.id("sky"), labels.id("grass")
    assert set(ids.unique().tolist()) == {sky, grass}
    assert (ids[4:10] == sky).all() and (ids[38:44] == grass).all()
    assert (ids[:23] == sky).all() and (ids[25:] == grass).all()  # the gap splits at its middle (rows 10..37)
    fixed = decode_canvas([layer], labels, unpainted="other")
    assert (fixed[15:30] == labels.id("other")).all() and (fixed[4:10] == sky).all()


def test_antialiased_rim_decodes_to_the_stroke_it_covers_at_least_half(labels):
    """A soft brush: the rim has alpha ramping 0..255 over the exact colour (canvases store it unpremultiplied)."""
    big = Image.new("L", (256, 192), 0)  # drawn 4x larger, box-downsampled: alpha = the pixel's coverage
    ImageDraw.Draw(big).ellipse([40, 32, 200, 160], fill=255)
    soft = np.asarray(big.resize((64, 48), Image.Resampling.BOX))
    assert len(np.unique(soft)) > 10  # really anti-aliased
    layer = _layer()
    layer[..., :3] = labels.classes[labels.id("flower")].rgb
    layer[..., 3] = soft
    # the rim's colour under low alpha is rounded by the canvas: perturb it by +-2 levels, still flower
    layer[..., 0] = np.clip(layer[..., 0].astype(int) + np.where(soft < 200, 2, 0), 0, 255)
    ids = decode_canvas([layer], labels, unpainted="sky")
    flower = ids == labels.id("flower")
    assert torch.equal(flower, torch.from_numpy(soft >= 128))
    area = np.pi * 20 * 16  # the ellipse's area at 1x: the rim is split where it is half covered
    assert abs(int(flower.sum()) - area) < 0.03 * area


def test_top_layer_wins_and_erased_holes_are_unpainted(labels):
    bottom, top = _layer(), _layer()
    _paint(bottom, labels, "grass", slice(0, 48), slice(0, 64))
    _paint(top, labels, "water", slice(10, 20), slice(10, 30))
    bottom[30:40, 40:60, 3] = 0  # the eraser: transparent again
    ids = decode_canvas([bottom, top], labels, unpainted="rock")
    assert (ids[10:20, 10:30] == labels.id("water")).all()
    assert (ids[30:40, 40:60] == labels.id("rock")).all()
    assert (ids[0:5] == labels.id("grass")).all()


def test_the_painted_sketch_round_trips_through_infer_decoding(labels):
    """What the page hands infer.py (encode_sketch of the ids) decodes back to exactly the same ids, 1 px
    strokes included."""
    layer = _layer()
    _paint(layer, labels, "sky", slice(0, 24), slice(0, 64))
    _paint(layer, labels, "mountain", slice(24, 48), slice(0, 64))
    _paint(layer, labels, "cloud", slice(5, 6), slice(3, 40))  # a 1 px line
    _paint(layer, labels, "flower", slice(30, 31), slice(20, 21))  # a single pixel
    ids = decode_canvas([layer], labels)
    assert torch.equal(decode_sketch(encode_sketch(ids, labels), labels), ids)


def test_bad_canvases_get_clear_errors(labels):
    with pytest.raises(DataError, match="empty: paint with the class brushes"):
        decode_canvas([], labels)
    with pytest.raises(DataError, match="empty"):
        decode_canvas([_layer()], labels)
    layer = _layer()
    layer[:20, :20] = (255, 0, 255, 255)
    with pytest.raises(DataError, match=r"400 painted pixels.*rgb\(255,0,255\) x 400 px.*Palette: other="):
        decode_canvas([layer], labels)
    with pytest.raises(DataError, match="differ in size"):
        decode_canvas([_layer(), _layer(32, 32)], labels)
    ok = _layer()
    _paint(ok, labels, "sky", slice(0, 4), slice(0, 4))
    with pytest.raises(DataError, match="'lava'.*no label class named"):
        decode_canvas([ok], labels, unpainted="lava")


def test_uploads_sketches_and_label_maps(labels, tmp_path):
    ids = decode_sketch(EXAMPLES / "wild_vegetation.png", labels)
    assert torch.equal(read_sketch_upload(EXAMPLES / "wild_vegetation.png", labels), ids)
    label_map_image(ids).save(tmp_path / "ids.png")  # 8-bit class ids
    assert torch.equal(read_sketch_upload(tmp_path / "ids.png", labels), ids)
    # loaded into the canvas as an opaque layer, it decodes to the same ids
    assert torch.equal(decode_canvas([np.asarray(sketch_layer(ids, labels))], labels), ids)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DataError, match="notes.png: cannot be read as an image"):
        read_sketch_upload(tmp_path / "notes.png", labels)
    Image.fromarray(np.full((8, 8), 200, np.uint8), "L").save(tmp_path / "big_ids.png")
    with pytest.raises(DataError, match=r"label ids \[200\] are outside the label set"):
        read_sketch_upload(tmp_path / "big_ids.png", labels)


def test_backdrops_and_resizing_keep_strokes_exact(labels, tmp_path):
    Image.new("RGB", (300, 150), (10, 20, 30)).save(tmp_path / "photo.png")
    assert load_backdrop(tmp_path / "photo.png", 200).size == (200, 100)
    xray = np.tile(np.linspace(0, 255, 120, dtype=np.uint8), (60, 1))
    Image.fromarray(xray, "L").save(tmp_path / "hidden.png")
    bd = np.asarray(load_backdrop(tmp_path / "hidden.png", 240, xray=True))
    assert bd.shape == (120, 240, 3) and bd.min() >= int(0.35 * 255) - 1  # lightened as `xray trace` does
    layer = _layer(10, 20)
    _paint(layer, labels, "tree", slice(2, 5), slice(4, 9))
    [moved] = resize_layers([layer], (40, 20))
    assert set(map(tuple, np.asarray(moved).reshape(-1, 4).tolist())) == {(0, 0, 0, 0), (168, 200, 50, 255)}
    ids = torch.zeros(10, 20, dtype=torch.long)
    ids[:, 10:] = 3
    big = resize_ids(ids, 40)
    assert big.shape == (20, 40) and set(big.unique().tolist()) == {0, 3} and (big[:, 20:] == 3).all()
