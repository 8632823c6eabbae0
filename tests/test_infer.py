"""`python infer.py` end to end on tiny checkpoints trained here: outputs, any size, tiling, bad sketches, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ROOT, TINY_CYCLEGAN, compose_train
from tests.seams import seam_gradient_ratio
from underpainting.data.labels import LabelSet
from underpainting.errors import DataError, UserError, WeightsError
from underpainting.infer import main, run
from underpainting.inference.stages import CycleGANPainting, ProceduralScene, Style
from underpainting.models.tiling import tile_starts
from underpainting.train import run as train_run

EXAMPLES = ROOT / "examples" / "sketches"
TINY_SPADE = [
    "experiment=spade_quickstart",
    "data.image_size=32",
    "data.num_train=4",
    "data.num_val=2",
    "data.batch_size=2",
    "model.G.ngf=8",
    "model.G.spade_hidden=16",
    "model.D.ndf=8",
    "model.D.num_D=1",
    "trainer.max_epochs=1",
    "trainer.precision=32-true",
    "logger=none",
    "callbacks.progress_bar=null",
    "callbacks.sample_grid=null",
]


TINY_PIX2PIX = [
    "experiment=pix2pix_quickstart",
    "data.image_size=32",
    "data.num_train=4",
    "data.num_val=2",
    "data.batch_size=2",
    "model.G.ngf=8",
    "model.G.num_downs=5",
    "model.D.ndf=8",
    "trainer.max_epochs=1",
    "trainer.precision=32-true",
    "logger=none",
    "callbacks.progress_bar=null",
    "callbacks.sample_grid=null",
]


@pytest.fixture(scope="session")
def cyclegan_ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cyclegan")
    overrides = [*TINY_CYCLEGAN, "trainer=cpu", "trainer.max_epochs=1", "trainer.precision=32-true"]
    train_run(compose_train(overrides + ["callbacks.sample_grid=null"], out))
    return out / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def spade_ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spade")
    train_run(compose_train(TINY_SPADE, out))
    return out / "checkpoints" / "last.ckpt"


QUICKSTART_STAGES = ["infer/stage1=spade", "infer/stage2=[cyclegan]"]  # infer's defaults are the painter's


def infer_cfg(tmp_path: Path, overrides: list[str]):
    """`python infer.py <overrides>`, on the quick-start stages (SPADE -> CycleGAN) unless they choose others."""
    stages = [s for s in QUICKSTART_STAGES if not any(o.startswith(s.split("=")[0] + "=") for o in overrides)]
    return compose_train(["progress=false", *stages, *overrides], tmp_path / "run", config_name="infer")


def sketch_folder(tmp_path: Path, labels: LabelSet) -> Path:
    """Two good sketches (one of an odd size) and three bad files."""
    d = tmp_path / "sketches"
    d.mkdir()
    shutil.copy(EXAMPLES / "synthetic_250x190.png", d / "a_odd_size.png")
    shutil.copy(EXAMPLES / "wild_vegetation.png", d / "b_wild.png")
    bad = np.array(Image.open(EXAMPLES / "synthetic_seed3.png").convert("RGB"))
    bad[20:60, 20:60] = (255, 0, 255)  # magenta is no class colour
    Image.fromarray(bad).save(d / "c_unknown_colour.png")
    data = (EXAMPLES / "synthetic_seed11.png").read_bytes()
    (d / "d_truncated.png").write_bytes(data[: len(data) // 2])
    (d / "e_not_an_image.png").write_text("these are notes, not a sketch\n")
    (d / "notes.txt").write_text("ignored: not an image extension\n")
    return d


def test_end_to_end_spade_cyclegan_with_bad_sketches(tmp_path, labels, spade_ckpt, cyclegan_ckpt):
    folder = sketch_folder(tmp_path, labels)
    cfg = infer_cfg(
        tmp_path,
        [
            f"input={folder}",
            f"stage1.checkpoint={spade_ckpt}",
            f"stage2.cyclegan.checkpoint={cyclegan_ckpt}",
            "stage1.tile=128",  # the 250x190 sketch is generated in tiles by both stages
            "stage1.overlap=32",
            "stage2.cyclegan.tile=128",
            "stage2.cyclegan.overlap=32",
        ],
    )
    with pytest.raises(SystemExit) as exc:  # what `python infer.py` does: paint the good ones, exit 1
        main(cfg)
    assert exc.value.code == 1
    out = Path(cfg.paths.output_dir)
    summary = {Path(s["sketch"]).name: s for s in json.loads((out / "summary.json").read_text())}

    assert [n for n, s in summary.items() if s["ok"]] == ["a_odd_size.png", "b_wild.png"]
    for name, size in (("a_odd_size", (250, 190)), ("b_wild", (256, 256))):
        d = out / name
        for f in (
            "sketch.png",
            "labels.png",
            "scene.png",
            "cyclegan.png",
            "contact_sheet.png",
            "config.yaml",
        ):
            assert (d / f).is_file(), f
        assert Image.open(d / "scene.png").size == size  # not a multiple of SPADE's 32: padded, cropped back
        assert Image.open(d / "cyclegan.png").size == size
        assert str(spade_ckpt) in (d / "config.yaml").read_text()
    assert (out / "overview.png").is_file() and (out / "config.yaml").is_file()

    errors = {n: s["error"] for n, s in summary.items() if not s["ok"]}
    assert len(errors) == 3
    assert "c_unknown_colour.png" in errors["c_unknown_colour.png"]
    assert "rgb(255,0,255)" in errors["c_unknown_colour.png"]
    assert "d_truncated.png" in errors["d_truncated.png"] and "cannot be read" in errors["d_truncated.png"]
    assert "e_not_an_image.png" in errors["e_not_an_image.png"]
    assert "cannot be read" in errors["e_not_an_image.png"]


def test_on_bad_sketch_error_stops(tmp_path, labels, cyclegan_ckpt):
    folder = sketch_folder(tmp_path, labels)
    (folder / "a_odd_size.png").unlink()
    (folder / "b_wild.png").unlink()
    cfg = infer_cfg(
        tmp_path,
        [
            f"input={folder}",
            "infer/stage1=procedural",
            f"stage2.cyclegan.checkpoint={cyclegan_ckpt}",
            "on_bad_sketch=error",
        ],
    )
    with pytest.raises(DataError, match="e_not_an_image.png: cannot be read"):  # its header: before any work
        run(cfg)
    assert not (Path(cfg.paths.output_dir) / "c_unknown_colour").exists()
    (folder / "e_not_an_image.png").unlink()
    with pytest.raises(DataError, match="c_unknown_colour.png"):  # then the first that fails to decode
        run(cfg)


def test_no_checkpoint_says_which_command(tmp_path, capsys):
    cfg = infer_cfg(tmp_path, [f"input={EXAMPLES}"])
    with pytest.raises(UserError, match=r"stage1.checkpoint.*python train.py experiment=spade_quickstart"):
        run(cfg)
    with pytest.raises(SystemExit) as exc:
        main(cfg)
    assert exc.value.code == 1
    assert "stage1.checkpoint" in capsys.readouterr().err
    cfg = infer_cfg(tmp_path, [f"input={EXAMPLES}", "infer/stage1=procedural"])
    with pytest.raises(UserError, match=r"stage2.cyclegan.checkpoint.*experiment=quickstart"):
        run(cfg)


def test_mismatched_checkpoints_name_both(tmp_path, labels, cyclegan_ckpt):
    # A CycleGAN where SPADE is expected.
    cfg = infer_cfg(tmp_path, [f"input={EXAMPLES}", f"stage1.checkpoint={cyclegan_ckpt}"])
    with pytest.raises(WeightsError, match=r"CycleGAN.*SPADEModel"):
        run(cfg)
    # A checkpoint trained on another label set.
    ckpt = torch.load(cyclegan_ckpt, map_location="cpu", weights_only=True)
    ckpt["underpainting_config"]["labels"]["classes"][9]["name"] = "poppy"
    other = tmp_path / "other_labels.ckpt"
    torch.save(ckpt, other)
    stage = CycleGANPainting(str(other))
    with pytest.raises(WeightsError, match=r"different label set.*'poppy'.*'flower'"):
        stage.setup(labels, torch.device("cpu"))
    # Not a checkpoint at all.
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.ckpt"):
        CycleGANPainting(str(junk)).setup(labels, torch.device("cpu"))


def test_exported_generator_is_accepted(tmp_path, labels, cyclegan_ckpt):
    from underpainting.export import export_generators

    paths = {p.stem: p for p in export_generators(cyclegan_ckpt, tmp_path / "export")}
    stage = CycleGANPainting(str(paths["G_BA"]))
    stage.setup(labels, torch.device("cpu"))
    scene = ProceduralScene()
    scene.setup(labels, torch.device("cpu"))
    ids = torch.zeros(40, 52, dtype=torch.long) + labels.id("grass")
    out = stage(scene(ids, Style())[0], ids, Style())
    assert out.shape == (3, 40, 52)
    with pytest.raises(WeightsError, match="G_AB.*G_BA"):
        CycleGANPainting(str(paths["G_AB"])).setup(labels, torch.device("cpu"))


def test_tiled_cyclegan_agrees_with_untiled_and_hides_seams(labels, cyclegan_ckpt):
    from underpainting.data.sketch import decode_sketch

    ids = decode_sketch(EXAMPLES / "wild_vegetation.png", labels)
    procedural = ProceduralScene()
    procedural.setup(labels, torch.device("cpu"))
    scene = procedural(ids, Style())[0]
    whole = CycleGANPainting(str(cyclegan_ckpt), tile=512)
    tiled = CycleGANPainting(str(cyclegan_ckpt), tile=96, overlap=32)
    for s in (whole, tiled):
        s.setup(labels, torch.device("cpu"))
    a, b = whole(scene, ids, Style()), tiled(scene, ids, Style())
    diff = (a - b).abs()
    assert diff.mean() < 0.01, diff.mean()
    seams = [c for s in tile_starts(256, 96, 32)[1:] for c in range(s, s + 32)]
    ratio = seam_gradient_ratio(b, a, seams)
    assert 0.9 < ratio < 1.1, ratio


def test_nst_stage_runs_on_a_sketch(tmp_path, cyclegan_ckpt):
    """Semantic NST as a second stage-2 method (random VGG weights: checks wiring and outputs, not looks)."""
    cfg = infer_cfg(
        tmp_path,
        [
            f"input={EXAMPLES / 'synthetic_250x190.png'}",
            "infer/stage1=procedural",
            "infer/stage2=[cyclegan,nst]",
            f"stage2.cyclegan.checkpoint={cyclegan_ckpt}",
            "stage2.nst.module.vgg.weights=random",
            "stage2.nst.module.vgg.arch=vgg16",
            "stage2.nst.module.objective.style_layers=[relu1_1,relu2_1]",
            "stage2.nst.pyramid=[{edge:32,steps:2},{edge:64,steps:1}]",
            "style.synthetic_size=64",
            "logger=tensorboard",  # sheets go to the same dashboards as training runs
        ],
    )
    with pytest.warns(UserWarning, match="RANDOM"):
        (result,) = run(cfg)
    assert result.ok, result.error
    d = Path(cfg.paths.output_dir) / "synthetic_250x190"
    assert Image.open(d / "nst.png").size == (250, 190)
    assert set(result.columns) >= {"sketch", "labels", "style: synthetic 7", "cyclegan", "nst"}
    assert list((Path(cfg.paths.output_dir) / "tensorboard").rglob("events.out.tfevents.*"))
    assert (Path(cfg.paths.output_dir) / "samples" / "final_overview.png").is_file()  # for `compare`


def test_pix2pix_stage1_any_size(tmp_path, labels, cyclegan_ckpt):
    out = tmp_path / "pix2pix"
    train_run(compose_train(TINY_PIX2PIX, out))
    cfg = infer_cfg(
        tmp_path,
        [
            f"input={EXAMPLES / 'synthetic_250x190.png'}",
            "infer/stage1=pix2pix",
            f"stage1.checkpoint={out / 'checkpoints' / 'last.ckpt'}",
            f"stage2.cyclegan.checkpoint={cyclegan_ckpt}",
        ],
    )
    (result,) = run(cfg)
    assert result.ok, result.error
    assert Image.open(result.out_dir / "scene.png").size == (
        250,
        190,
    )  # U-Net stride 32: padded, cropped back
    assert "scene (pix2pix)" in result.columns


def test_spade_style_encoder_gives_one_scene_per_style(tmp_path):
    """With the encoder (fixed crop size), tiles are that size; a style image steers the first scene."""
    out = tmp_path / "spade_vae"
    vae = ["model.G.use_vae=true", "model.G.crop_size=32", "model.G.z_dim=16",
           "model.E={_target_:underpainting.models.networks.spade.ConvEncoder,ngf:8,z_dim:16,input_size:32}"]  # fmt: skip
    train_run(compose_train(TINY_SPADE + vae, out))
    cfg = infer_cfg(
        tmp_path,
        [
            f"input={EXAMPLES / 'synthetic_250x190.png'}",
            f"stage1.checkpoint={out / 'checkpoints' / 'last.ckpt'}",
            "stage1.num_styles=2",
            "stage1.overlap=8",
            f"stage1.style_image={EXAMPLES / 'synthetic_seed3.png'}",
            "infer/stage2=[]",
        ],
    )
    (result,) = run(cfg)
    assert result.ok, result.error
    a, b = (np.asarray(Image.open(result.out_dir / f"scene_{k}.png")) for k in (0, 1))
    assert a.shape == b.shape == (190, 250, 3) and not np.array_equal(a, b)
    sheet = Image.open(result.sheet)
    assert sheet.height > 2 * 190  # two rows, one per style


def test_a_long_column_caption_is_cut_to_its_column():
    """Two paintings named in one caption ran into the next column's caption (the painter's contact sheet)."""
    from PIL import ImageDraw, ImageFont

    from underpainting.data.sheets import fit_text, labelled_grid

    long = "style: mountains_behind_saint_paul_1889 + field_with_poppies_1889"
    sheet = labelled_grid({long: torch.zeros(1, 3, 32, 64), "next": torch.zeros(1, 3, 32, 64)})
    header = np.asarray(sheet)[:14]
    assert (header[:, 66 : 66 + 4] == 255).all()  # the gap before the second column's caption stays white
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    cut = fit_text(draw, long, font, 60)
    assert cut.endswith("...") and draw.textlength(cut, font=font) <= 60 and long.startswith(cut[:-3])
    assert fit_text(draw, "next", font, 60) == "next"
