"""Paired label/photo data: layouts, remapping through the classes file, transforms in step, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from underpainting.data.images import DataError
from underpainting.data.labels import LabelSet
from underpainting.data.paired import (
    LabelReader,
    SegmentationDataModule,
    SegmentationPairs,
    SyntheticPairsDataModule,
    landscape_segments_pairs,
    load_classes,
)
from underpainting.data.transforms import Preprocess

CONF = Path(__file__).parents[1] / "conf" / "labels" / "landscape.yaml"
SHARED = Path(__file__).parents[2] / "shared" / "data" / "landscape_segments"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/landscape_segments not present")


def write_pair(
    root: Path, name: str, ids: np.ndarray, rgb: np.ndarray | None = None, folder: str = "labels"
) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / folder).mkdir(parents=True, exist_ok=True)
    if rgb is None:
        rgb = np.stack(
            [ids * 10 % 256, ids * 40 % 256, np.arange(ids.shape[1])[None].repeat(ids.shape[0], 0)], -1
        )
    Image.fromarray(rgb.astype(np.uint8)).save(root / "images" / f"{name}.png")
    Image.fromarray(ids.astype(np.uint8), "L").save(root / folder / f"{name}.png")


def test_classes_file_formats_agree(labels, tmp_path):
    import yaml

    data = yaml.safe_load(CONF.read_text())
    classes = [
        {
            "id": c["id"],
            "name": c["name"],
            "rgb": c["rgb"],
            "source_ids": {"coco-stuff": c["coco_stuff"], "ade20k-150": c["ade20k"]},
        }
        for c in data["classes"]
    ]
    (tmp_path / "classes.yaml").write_text(yaml.safe_dump({"classes": classes}))
    other = load_classes(tmp_path / "classes.yaml")
    assert other.names == labels.names
    for s in LabelSet.SOURCES:
        assert np.array_equal(other.source_lut(s), labels.source_lut(s))


def test_transform_keeps_label_and_image_in_step(labels, tmp_path):
    # The image encodes each pixel's label in its red channel: after resize, crop and flip they must still agree.
    ids = np.zeros((40, 56), np.int64)
    ids[:, 20:] = 8
    ids[25:, :] = 14
    ids[5:12, 30:40] = 9
    rgb = np.stack([ids * 12, np.zeros_like(ids), np.zeros_like(ids)], -1)
    write_pair(tmp_path, "a", ids, rgb)
    pairs = landscape_segments_pairs(tmp_path)
    ds = SegmentationPairs(pairs, LabelReader(labels), Preprocess("resize_and_crop", 48, 32), train=True)
    flipped = set()
    for draw in range(12):
        item = ds[(0, draw)]
        assert item["label"].shape == (32, 32) and item["label"].dtype == torch.int64
        assert item["image"].shape == (3, 32, 32)
        red = ((item["image"][0] + 1) * 127.5).round()
        # Away from region boundaries (bicubic blurs them) the colour must encode the label exactly.
        lab = item["label"]
        interior = torch.ones_like(lab, dtype=torch.bool)
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0), (2, 0), (-2, 0), (0, 2), (0, -2)):
            interior &= lab == lab.roll((dy, dx), (0, 1))
        interior[:2], interior[-2:], interior[:, :2], interior[:, -2:] = False, False, False, False
        assert torch.allclose(red[interior], (lab[interior] * 12).float(), atol=6)
        assert set(lab.unique().tolist()) <= {0, 8, 9, 14}  # nearest neighbour: no blended ids
        flipped.add(bool(lab[0, 0] == 0))
    assert flipped == {True, False}  # flips happen, in step
    assert torch.equal(ds[(0, 3)]["label"], ds[(0, 3)]["label"])  # the draw fixes crop and flip
    val = SegmentationPairs(pairs, LabelReader(labels), Preprocess("resize_and_crop", 48, 32), train=False)
    assert torch.equal(val[(0, 1)]["image"], val[(0, 2)]["image"])  # evaluation: centre crop, no flip


def test_unknown_label_id_names_file_and_id(labels, tmp_path):
    ids = np.full((32, 32), 3)
    ids[4:8, 4:8] = 42
    write_pair(tmp_path, "bad", ids)
    write_pair(tmp_path, "good", np.full((32, 32), 1))
    dm = SegmentationDataModule(tmp_path, labels, preprocess=Preprocess("none"), val_count=0)
    with pytest.raises(DataError) as err:
        dm.setup()
    msg = str(err.value)
    assert "bad.png" in msg and "[42]" in msg and "label_source" in msg


def test_dontcare_value(labels, tmp_path):
    ids = np.full((32, 32), 1)
    ids[:4] = 255
    write_pair(tmp_path, "a", ids)
    with pytest.raises(DataError, match="255"):
        LabelReader(labels).read(tmp_path / "labels" / "a.png")
    out = LabelReader(labels, dontcare=True).read(tmp_path / "labels" / "a.png")
    assert (out[:4] == len(labels)).all() and (out[4:] == 1).all()


def test_source_ids_remapped(labels, tmp_path):
    # COCO-Stuff values: 156 sky, 105 clouds, 119 fog -> cloud, 255 unlabeled and 60 (not listed) -> other.
    ids = np.array([[156, 105, 119, 255, 60, 0]])
    write_pair(tmp_path, "c", np.repeat(ids, 8, 0).repeat(8, 1), folder="labels_source")
    pairs = landscape_segments_pairs(tmp_path, "labels_source", "coco_stuff")
    out = LabelReader(labels).read(pairs[0].label, pairs[0].source)
    sky, cloud, person = labels.id("sky"), labels.id("cloud"), labels.id("person")
    assert out[0, ::8].tolist() == [sky, cloud, cloud, 0, 0, person]


def test_missing_partner_and_size_mismatch(labels, tmp_path):
    write_pair(tmp_path, "a", np.ones((32, 32)))
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "images" / "lonely.png")
    with pytest.raises(DataError, match="lonely.png"):
        landscape_segments_pairs(tmp_path)
    (tmp_path / "images" / "lonely.png").unlink()
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    ds = SegmentationPairs(
        landscape_segments_pairs(tmp_path), LabelReader(labels), Preprocess("none"), train=False
    )
    with pytest.raises(DataError, match="pixel-aligned"):
        ds[0]


def test_ade20k_and_coco_layouts(labels, tmp_path):
    tiny = Preprocess("resize_and_crop", 32, 32)
    ade = tmp_path / "ADEChallengeData2016"
    for split in ("training", "validation"):
        land = np.full((32, 32), 3)  # ADE 3 = sky
        land[20:] = 22  # water
        indoor = np.full((32, 32), 4)  # floor -> other
        for name, ids in (("land", land), ("indoor", indoor)):
            (ade / "images" / split).mkdir(parents=True, exist_ok=True)
            (ade / "annotations" / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(ade / "images" / split / f"{name}.jpg")
            Image.fromarray(ids.astype(np.uint8), "L").save(ade / "annotations" / split / f"{name}.png")
    dm = SegmentationDataModule(
        tmp_path, labels, layout="ade20k", preprocess=tiny, min_landscape_fraction=0.5
    )
    dm.setup()
    assert len(dm.train_set) == 1 and len(dm.val_set) == 1
    item = dm.train_set[0]
    assert set(item["label"].unique().tolist()) == {labels.id("sky"), labels.id("water")}

    coco = tmp_path / "coco"
    for split in ("train", "val"):
        (coco / f"{split}_img").mkdir(parents=True)
        (coco / f"{split}_label").mkdir(parents=True)
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(coco / f"{split}_img" / "x.jpg")
        Image.fromarray(np.full((32, 32), 123, np.uint8), "L").save(
            coco / f"{split}_label" / "x.png"
        )  # grass
    dm = SegmentationDataModule(coco, labels, layout="coco_stuff", preprocess=tiny)
    dm.setup()
    assert dm.train_set[0]["label"].unique().tolist() == [labels.id("grass")]
    with pytest.raises(DataError, match="COCO-Stuff"):
        SegmentationDataModule(tmp_path, labels, layout="coco_stuff").setup()


def test_synthetic_pairs(labels):
    dm = SyntheticPairsDataModule(labels, image_size=32, num_train=4, num_val=2, batch_size=2)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["label"].shape == (2, 32, 32) and batch["image"].shape == (2, 3, 32, 32)
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    from underpainting.data.synthetic import SyntheticLandscapes

    scene = SyntheticLandscapes(labels, 32)(dm.val_set.scene_seed)
    lab, photo = dm.val_set.render(0)
    assert torch.equal(lab, scene.labels) and torch.allclose(
        photo, scene.photo
    )  # same scenes as the generator


@needs_shared
def test_shared_landscape_segments(labels):
    dm = SegmentationDataModule(SHARED, labels, batch_size=2, val_count=4)
    dm.setup()
    assert len(dm.train_set) + len(dm.val_set) == 35 and len(dm.val_set) == 4
    batch = next(iter(dm.val_dataloader()))
    assert batch["label"].shape == (2, 256, 256) and int(batch["label"].max()) < len(labels)
    # Source ids remapped through either classes file give exactly the unified labels/ of the dataset.
    unified = landscape_segments_pairs(SHARED)
    source = landscape_segments_pairs(SHARED, "labels_source", "index")
    for classes in (labels, load_classes(SHARED / "classes.yaml")):
        reader = LabelReader(classes)
        for a, b in zip(unified, source, strict=True):
            assert np.array_equal(reader.read(a.label), reader.read(b.label, b.source)), a.label.name
