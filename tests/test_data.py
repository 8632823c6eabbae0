"""Datamodules: layout, sampling, preprocessing, determinism, bad files and the offline-download error."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import CONF
from underpainting.data import download
from underpainting.data.colour import LUMA, luminance, rgb_to_yiq
from underpainting.data.images import load_rgb, validate_images
from underpainting.data.labels import LabelSet, one_hot
from underpainting.data.sampling import DrawSampler
from underpainting.data.synthetic import SCENE_CLASSES, SyntheticLandscapes
from underpainting.data.transforms import Preprocess
from underpainting.data.unaligned import SyntheticUnpaired, VanGoghLandscapes
from underpainting.data.xray.simulator import LeadWhiteResponse
from underpainting.errors import DataError

LABELS = LabelSet.from_yaml(CONF / "labels" / "landscape.yaml")
SMALL = Preprocess(mode="resize_and_crop", load_size=36, crop_size=32)


def _image(path: Path, size=(48, 40), colour=(200, 40, 40), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode == "RGB" else colour[0]).save(path)
    return path


def make_dataset(root: Path, counts=(3, 5, 2, 2)) -> Path:
    for split, n in zip(("trainA", "trainB", "testA", "testB"), counts, strict=True):
        for i in range(n):
            shade = 40 * i if split.endswith("A") else 255 - 40 * i
            _image(root / split / f"{split}_{i}.png", colour=(shade, 100, 30))
    return root


def dm(root, **kw) -> VanGoghLandscapes:
    kw = {"preprocess": SMALL, "batch_size": 2, "num_workers": 0, **kw}
    m = VanGoghLandscapes(root=str(root), **kw)
    m.setup("fit")
    return m


def test_one_hot_reads_nothing_back_from_an_accelerator():
    """The id check reads the ids on the host: free on the CPU, a sync per training step on a GPU. A meta tensor has
    no values to read, so it stands in for a GPU one."""
    ids = torch.zeros(2, 4, 4, dtype=torch.long, device="meta")
    assert one_hot(ids, len(LABELS)).shape == (2, len(LABELS), 4, 4)


def test_labels_match_the_shared_palette_file(shared_dir):
    shared = LabelSet.from_yaml(shared_dir / "data" / "landscape_segments" / "classes.yaml")
    assert shared.names == LABELS.names
    assert torch.equal(shared.palette, LABELS.palette)


def test_one_hot_encodes_ids_and_names_the_files_of_unknown_ids():
    ids = torch.tensor([[[0, 9], [19, 9]]])
    onehot = one_hot(ids, len(LABELS))
    assert onehot.shape == (1, 20, 2, 2) and onehot.dtype == torch.float32
    assert torch.equal(onehot.argmax(1), ids) and torch.equal(onehot.sum(1), torch.ones(1, 2, 2))
    with pytest.raises(DataError, match=r"\[-1, 25\] in a.png, b.png outside 0..19"):
        one_hot(torch.tensor([[[0, 25]], [[-1, 3]]]), len(LABELS), paths=["a.png", "b.png"])


def test_synthetic_scenes_are_deterministic_and_use_the_label_set():
    render = SyntheticLandscapes(LABELS, (48, 80))
    a, b, c = render(3), render(3), render(4)
    assert (
        torch.equal(a.photo, b.photo)
        and torch.equal(a.painting, b.painting)
        and torch.equal(a.labels, b.labels)
    )
    assert not torch.equal(a.photo, c.photo)
    assert a.photo.shape == a.painting.shape == (3, 48, 80) and a.labels.shape == (48, 80)
    assert a.photo.min() >= -1 and a.photo.max() <= 1
    assert set(a.labels.unique().tolist()) <= {LABELS.id(n) for n in SCENE_CLASSES}
    assert {LABELS.id("sky"), LABELS.id("mountain")} <= set(a.labels.unique().tolist())


def test_synthetic_painting_differs_from_photo_in_texture():
    scene = SyntheticLandscapes(LABELS, 64)(0)
    sky = scene.labels == LABELS.id("sky")
    # Brush strokes make the painted sky far more textured than the photo's smooth gradient.
    assert scene.painting[:, sky].std(dim=1).mean() > 2 * scene.photo[:, sky].std(dim=1).mean()


def test_synthetic_unpaired_batches():
    m = SyntheticUnpaired(LABELS, image_size=32, num_train=6, num_val=2, batch_size=3, num_workers=0)
    m.setup("fit")
    batch = next(iter(m.train_dataloader()))
    assert batch["A"].shape == batch["B"].shape == (3, 3, 32, 32)
    assert len(m.train_dataloader()) == 2


def test_folder_datamodule_shapes_epoch_length_and_ranges(tmp_path):
    m = dm(make_dataset(tmp_path / "d"))
    assert len(m.train_set) == 5, "an epoch is max(|A|, |B|)"
    batch = next(iter(m.train_dataloader()))
    assert batch["A"].shape == (2, 3, 32, 32)
    assert -1 <= batch["A"].min() and batch["A"].max() <= 1
    val = next(iter(m.val_dataloader()))
    assert val["B"].shape == (2, 3, 32, 32)


def test_sampling_is_deterministic_and_changes_with_epoch(tmp_path):
    root = make_dataset(tmp_path / "d")
    a, b = dm(root, seed=7).train_dataloader(), dm(root, seed=7).train_dataloader()
    assert all(torch.equal(x["B"], y["B"]) for x, y in zip(a, b, strict=True))
    a.sampler.set_epoch(1)
    assert not all(torch.equal(x["A"], y["A"]) for x, y in zip(a, b, strict=True))


def test_serial_batches_pair_b_in_step_with_a(tmp_path):
    m = dm(make_dataset(tmp_path / "d"), serial_batches=True)
    order = [i for i, _ in DrawSampler(5, shuffle=False)]
    assert order == [0, 1, 2, 3, 4]
    item = m.train_set[(4, 12345)]
    ref = m.train_set[(4, 999)]
    assert torch.equal(item["B"].mean(), ref["B"].mean()), "B depends only on the index, not the random draw"


def test_sampler_shards_ranks_disjointly_and_resumes(monkeypatch):
    import underpainting.data.sampling as sampling

    shards = []
    for rank in (0, 1):
        monkeypatch.setattr(sampling, "_world", lambda r=rank: (r, 2))
        shards.append([i for i, _ in DrawSampler(10, seed=3)])
    assert len(shards[0]) == len(shards[1]) == 5
    assert sorted(shards[0] + shards[1]) == list(range(10))
    monkeypatch.setattr(sampling, "_world", lambda: (0, 1))
    s = DrawSampler(10, seed=3)
    full = list(s)
    s.resume(epoch=0, skip=4)
    assert list(s) == full[4:]
    assert list(s) == full, "the skip applies once"


@pytest.mark.parametrize("num_items", [5, 3, 1])
def test_evaluation_shards_hold_every_item_once(monkeypatch, num_items):
    """Validation under DDP: a padded shard showed an image twice to the epoch's metrics (5 on 2 ranks: 3 + 3).
    With fewer items than ranks each rank still gets one (a rank without a batch would hang the others)."""
    import underpainting.data.sampling as sampling

    shards = []
    for rank in (0, 1):
        monkeypatch.setattr(sampling, "_world", lambda r=rank: (r, 2))
        sampler = DrawSampler(num_items, shuffle=False, pad=False)
        shards.append([i for i, _ in sampler])
        assert len(sampler) == len(shards[-1]) >= 1
    seen = shards[0] + shards[1]
    assert sorted(seen) == list(range(num_items)) if num_items >= 2 else seen == [0, 0]
    monkeypatch.setattr(sampling, "_world", lambda: (0, 1))
    assert [i for i, _ in DrawSampler(num_items, shuffle=False, pad=False)] == list(range(num_items))


def test_datamodules_validate_on_unpadded_shards(tmp_path, monkeypatch):
    import underpainting.data.sampling as sampling

    m = dm(make_dataset(tmp_path / "d", counts=(3, 5, 3, 3)), batch_size=1)
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(sampling, "_world", lambda r=rank: (r, 2))
        seen += [float(b["A"].mean()) for b in m.val_dataloader()]
    assert len(seen) == len(set(seen)) == len(m.val_set) == 3


@pytest.mark.parametrize("mode", ["resize_and_crop", "scale_width_and_crop", "crop", "scale_width", "none"])
def test_preprocess_modes(mode):
    p = Preprocess(mode=mode, load_size=40, crop_size=32)
    img = Image.new("RGB", (50, 38))
    out = p.apply(img, p.params(img.size, torch.Generator().manual_seed(0)))
    expected = {
        "resize_and_crop": (32, 32),
        "scale_width_and_crop": (32, 32),
        "crop": (32, 32),
        "scale_width": (32, 24),
        "none": (48, 40),
    }[mode]  # reference rounds to base 4
    assert out.size == expected


def test_eval_preprocessing_is_a_deterministic_centre_crop():
    p = Preprocess(mode="crop", crop_size=2, flip=True)
    img = Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4))
    out = np.asarray(p.apply(img, p.params(img.size, None)))
    assert out.tolist() == [[5, 6], [9, 10]]


@pytest.mark.parametrize(
    ("mode", "value"), [("L", 128), ("LA", 128), ("RGBA", 128), ("P", 3), ("I;16", 65535), ("CMYK", 0)]
)
def test_unusual_image_modes_convert_to_rgb(tmp_path, mode, value):
    if mode == "I;16":
        img = Image.fromarray(np.full((8, 8), value, dtype=np.uint16))
    elif mode == "CMYK":
        img = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red
    else:
        img = Image.new(mode, (8, 8), value if mode in ("L", "P") else (value,) * len(mode))
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    img.save(path)
    rgb = load_rgb(path)
    assert rgb.mode == "RGB" and rgb.size == (8, 8)
    if mode == "I;16":
        assert np.asarray(rgb).max() == 255
    if mode == "CMYK":
        assert tuple(np.asarray(rgb)[0, 0]) == pytest.approx((255, 0, 0), abs=3)


def test_the_image_loader_names_a_missing_or_unreadable_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataError, match=f"image {tmp_path / 'none.png'} does not exist"):
        load_rgb("~/none.png")  # ~ expanded, as in a config value
    (tmp_path / "notes.png").write_text("not an image\n")
    with pytest.raises(DataError, match="notes.png: cannot be read as an image"):
        load_rgb(tmp_path / "notes.png")
    _image(tmp_path / "red.png")
    assert load_rgb("~/red.png").getpixel((0, 0)) == (200, 40, 40)


def test_one_luma_for_the_x_ray_and_luminance_only_style_transfer():
    """BT.601 weights, written once: the X-ray's grey (the reference's rgb2gray) is YIQ's Y of the NST colour code."""
    x = torch.rand(2, 3, 5, 7) * 2 - 1
    torch.testing.assert_close(luminance((x + 1) / 2), rgb_to_yiq(x)[:, :1])
    assert luminance(torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)).item() == pytest.approx(0.299)
    assert LeadWhiteResponse().weights == LUMA == (0.299, 0.587, 0.114)


def _bad_files(folder: Path) -> list[Path]:
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (folder / "notes.png").write_text("this is text")
    _image(folder / "tiny.png", size=(10, 10))
    return [folder / n for n in ("corrupt.jpg", "truncated.jpg", "notes.png", "tiny.png")]


def test_bad_files_fail_fast_with_the_full_list(tmp_path):
    root = make_dataset(tmp_path / "d")
    bad = _bad_files(root / "trainB")
    with pytest.raises(DataError) as e:
        dm(root)
    message = str(e.value)
    assert "4 of 9" in message and "on_bad_file=skip" in message
    for p in bad:
        assert p.name in message
    assert "smaller than the crop size 32" in message


def test_bad_files_can_be_skipped(tmp_path, caplog):
    root = make_dataset(tmp_path / "d")
    bad = _bad_files(root / "trainB")
    m = dm(root, on_bad_file="skip")
    assert len(m.train_set) == 5
    assert "skipping 4 of 9" in caplog.text
    for p in bad:  # every skipped file is named, with its reason
        assert str(p) in caplog.text


def test_validate_images_rejects_all_bad():
    with pytest.raises(DataError, match="all 1"):
        validate_images([Path("/nonexistent.png")], on_bad_file="skip")


def test_empty_folder_is_named(tmp_path):
    root = make_dataset(tmp_path / "d")
    for p in (root / "testA").iterdir():
        p.unlink()
    with pytest.raises(DataError, match=r"testA holds no images"):
        dm(root)


def test_missing_root_explains_layout_and_both_fixes(tmp_path):
    with pytest.raises(DataError) as e:
        dm(tmp_path / "nowhere", download=False)
    msg = str(e.value)
    assert str(tmp_path / "nowhere") in msg and "trainA" in msg and "testB" in msg
    assert "data.download=true" in msg and "data.root" in msg


def test_offline_download_fails_fast_with_instructions(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as e:
        dm(tmp_path / "vangogh2photo", download=True)
    msg = str(e.value)
    assert "vangogh2photo.zip" in msg and "could not download" in msg and "data.root" in msg


def test_download_verifies_and_extracts_the_archive(tmp_path, monkeypatch):
    src = make_dataset(tmp_path / "src" / "vangogh2photo")
    archive = tmp_path / "served.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in src.rglob("*.png"):
            z.write(p, p.relative_to(src.parent))
    monkeypatch.setattr(download, "CYCLEGAN_DATASETS_URL", archive.as_uri().replace("served", "{name}"))
    archive.rename(tmp_path / "vangogh2photo.zip")
    served = hashlib.sha256((tmp_path / "vangogh2photo.zip").read_bytes()).hexdigest()
    monkeypatch.setitem(download.CYCLEGAN_SHA256, "vangogh2photo", "0" * 64)
    with pytest.raises(
        DataError, match="SHA-256 .* does not match"
    ):  # the known checksum is checked by default
        dm(tmp_path / "data" / "vangogh2photo")
    monkeypatch.setitem(download.CYCLEGAN_SHA256, "vangogh2photo", served)
    m = dm(tmp_path / "data" / "vangogh2photo")  # no data.download=true needed: fetched on first use
    assert len(m.train_set) == 5


def test_the_first_command_fetches_vangogh2photo_by_itself_with_its_checksum():
    from underpainting.config.compose import compose_run

    cfg = compose_run(["model=cyclegan", "data=vangogh_landscapes"], "/tmp/unused")
    assert cfg.data.download is True
    assert (
        download.CYCLEGAN_SHA256["vangogh2photo"]
        == (
            "362c3473e70be0944bda08d49d660eafdc2854df55d697835b8186d1d79caaff"  # tensorflow/datasets cycle_gan.txt
        )
    )


def test_csv_filter_keeps_listed_paintings(tmp_path):
    root = make_dataset(tmp_path / "d")
    csv = tmp_path / "tags.csv"
    csv.write_text(
        "file,subject\ntrainA/trainA_0.png,landscape\ntrainA/trainA_1.png,portrait\ntrainA/trainA_2.png,landscape\ntestA/testA_0.png,landscape\n"
    )
    m = dm(root, filter={"file": str(csv), "column": "subject", "equals": "landscape"})
    assert m.train_set.size_A == 2
    with pytest.raises(DataError, match="no column"):
        dm(root, filter={"file": str(csv), "column": "genre", "equals": "x"})


def test_real_vangogh_landscapes(shared_dir):
    root = shared_dir / "data" / "vangogh_landscapes"
    tags = root / "subject_tags.csv"
    m = VanGoghLandscapes(
        root=str(root),
        batch_size=2,
        num_workers=0,
        filter={"file": str(tags), "column": "subject", "equals": "landscape_or_outdoor"},
    )
    m.setup("fit")
    assert m.train_set.size_A == 197 and m.train_set.size_B == 1200
    assert len(m.train_set) == 1200
    batch = next(iter(m.train_dataloader()))
    assert batch["A"].shape == (2, 3, 256, 256)


def _bomb(path: Path, side: int) -> Path:
    img = Image.new("P", (side, side), 0)
    img.putpalette([156, 238, 221] * 256)
    img.save(path)
    return path


def test_the_size_is_read_from_the_header_and_refused_before_decoding(tmp_path, monkeypatch):
    from underpainting.data.images import ImageTooLarge, pixel_limit

    path = _bomb(tmp_path / "wide.png", 3000)  # 9 MP, a few KB on disk
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded an image over the limit"))
    with pixel_limit(1_000_000, "max_pixels"), pytest.raises(ImageTooLarge) as e:
        load_rgb(path)
    assert str(e.value).startswith(
        f"{path}: 3000x3000 px (9.0 MP) is over the limit of 1.0 MP (`max_pixels=1000000`)"
    )


def test_a_limit_set_inside_a_smaller_one_keeps_the_smaller(tmp_path):
    """The app's jobs are infer runs: infer's own (larger) max_pixels must not lift the app's."""
    from underpainting.data.images import ImageTooLarge, current_pixel_limit, pixel_limit

    path = _bomb(tmp_path / "p.png", 1500)  # 2.25 MP
    with pixel_limit(2_000_000, "app.max_pixels"), pixel_limit(16_000_000, "max_pixels"):
        assert current_pixel_limit().key == "app.max_pixels"
        with pytest.raises(ImageTooLarge, match="app.max_pixels"):
            load_rgb(path)
    with pixel_limit(16_000_000, "max_pixels"):
        assert load_rgb(path).size == (1500, 1500)
    with pytest.raises(DataError, match="`max_pixels`=0 must be a positive number"):
        with pixel_limit(0, "max_pixels"):
            pass


def test_pils_own_bomb_check_never_undercuts_a_raised_limit(tmp_path, monkeypatch):
    from underpainting.data.images import ImageTooLarge, open_image, pixel_limit

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    path = _bomb(
        tmp_path / "p.png", 14000
    )  # 196 MP: over twice PIL's default 89 MP, where PIL refuses by itself
    with pytest.raises(ImageTooLarge, match=r"p.png: .*196.* MP.* is over the limit of 64.0 MP"):
        with open_image(path):
            pass
    with pixel_limit(200_000_000, "max_pixels"), open_image(path) as img:  # header only: nothing decoded
        assert img.size == (14000, 14000)


def test_broken_symlinks_are_reported_not_dropped(tmp_path):
    from underpainting.data.images import list_images

    folder = tmp_path / "photos"
    _image(folder / "good.png")
    (folder / "dangling.jpg").symlink_to(folder / "gone.jpg")
    (folder / "loop.jpg").symlink_to("loop.jpg")
    files = list_images(folder)
    assert [p.name for p in files] == ["dangling.jpg", "good.png", "loop.jpg"]
    with pytest.raises(DataError) as e:
        validate_images(files, on_bad_file="error")
    assert f"dangling.jpg: a symlink to {folder / 'gone.jpg'}, which does not exist" in str(e.value)
    assert "loop.jpg: a symlink that leads back to itself" in str(e.value)
    assert [p.name for p in validate_images(files, on_bad_file="skip")] == ["good.png"]


def test_a_refusal_by_pils_own_check_still_names_the_size(tmp_path, monkeypatch):
    """The app lowers PIL's global bomb check to its limit (`guard_decoding`); an image PIL then refuses by itself
    gets the same one line as ours, with its width and height, not PIL's bare pixel count."""
    from underpainting.data.images import ImageTooLarge, guard_decoding, open_image, pixel_limit

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    path = _bomb(tmp_path / "wide.png", 3000)  # 9 MP
    guard_decoding(2_000_000)  # PIL refuses above 2 MP
    with pixel_limit(1_000_000, "max_pixels"), pytest.raises(ImageTooLarge) as e:
        with open_image(path):
            pass
    assert str(e.value).startswith(
        f"{path}: 3000x3000 px (9.0 MP) is over the limit of 1.0 MP (`max_pixels=1000000`)"
    )
    assert Image.MAX_IMAGE_PIXELS == 1_000_000  # PIL's global limit left as the app set it
