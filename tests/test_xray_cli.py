"""`python -m underpainting.xray simulate | separate | trace` and the X-ray guide in `infer.py` (nst_xray stage)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ROOT, compose_train
from underpainting.data.colour import rgb_to_yiq
from underpainting.data.labels import LabelSet
from underpainting.data.synthetic import SyntheticLandscapes
from underpainting.data.xray.io import load_xray
from underpainting.errors import UserError
from underpainting.infer import run as infer_run
from underpainting.xray.cli import main
from underpainting.xray.metrics import pearson
from underpainting.xray.painting import xray_content

LABELS = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """Two procedural paintings on disk and their simulated mixture (`simulate`)."""
    d = tmp_path_factory.mktemp("xray_case")
    scenes = SyntheticLandscapes(LABELS, 80)
    for name, seed in (("top.png", 0), ("under.png", 1)):
        rgb = ((scenes(seed).painting + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(rgb, "RGB").save(d / name)
    assert (
        main(["simulate", str(d / "top.png"), str(d / "under.png"), "--out", str(d / "sim"), "--size", "64"])
        == 0
    )
    return d


def test_simulate_writes_the_case_with_its_truth(case):
    sim = case / "sim"
    assert Image.open(sim / "xray.png").mode.startswith("I;16") and Image.open(sim / "visible.png").size == (
        64,
        64,
    )
    meta = json.loads((sim / "simulation.json").read_text())
    xray, truth = load_xray(sim / "xray.png"), load_xray(sim / "hidden_truth.png")
    # The files keep the simulation: xray.png = (X - offset) * scale, the truth = hidden * scale.
    assert 0.2 < pearson(xray, truth) < 0.95 and meta["simulator"]["psf_sigma"] == 1.0
    assert set(meta["files"]) >= {"xray.png", "visible.png", "hidden_truth.png", "surface_truth.png"}


def test_separate_writes_the_parts_checkpoint_and_config(case, tmp_path, capsys, one_thread):
    sim, out = case / "sim", tmp_path / "sep"
    argv = ["separate", str(sim / "xray.png"), str(sim / "visible.png"), "--out", str(out), "--truth",
            str(sim / "hidden_truth.png"), "trainer.max_epochs=1", "data.steps_per_epoch=5", "data.patch_size=32",
            "logger=none", "callbacks.progress_bar=null"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "hidden.png" in printed and "separation" in printed and "PSNR" in printed
    for name in (
        "hidden.png",
        "hidden_16bit.png",
        "surface.png",
        "residual.png",
        "contact_sheet.png",
        "config.yaml",
    ):
        assert (out / name).is_file(), name
    assert Image.open(out / "hidden.png").size == (64, 64)
    assert (out / "checkpoints" / "last.ckpt").is_file()
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["underpainting_config"]["data"]["xray"].endswith(
        "xray.png"
    )  # the run is the tracked train.py run


def test_separate_reports_bad_inputs_in_one_line(case, tmp_path, capsys):
    sim = case / "sim"
    quiet = ["logger=none", "callbacks.progress_bar=null"]
    with pytest.raises(SystemExit) as done:
        main(
            [
                "separate",
                str(sim / "visible.png"),
                str(sim / "xray.png"),
                "--out",
                str(tmp_path / "x"),
                *quiet,
            ]
        )
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert "error: " in err and "visible.png is a colour image" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as done:
        main(["separate", str(tmp_path / "none.tif"), str(sim / "visible.png"), "--out", str(tmp_path / "y")])
    assert done.value.code == 1
    assert "none.tif does not exist" in capsys.readouterr().err


def test_trace_writes_backdrop_key_and_overlay(case, tmp_path):
    hidden = case / "sim" / "hidden_truth.png"
    sketch = tmp_path / "sketch.png"
    Image.fromarray(np.full((96, 96, 3), LABELS.classes[1].rgb, np.uint8)).save(sketch)
    assert main(["trace", str(hidden), "--out", str(tmp_path / "t"), "--sketch", str(sketch)]) == 0
    t = tmp_path / "t"
    assert Image.open(t / "backdrop.png").size == (96, 96) and Image.open(t / "overlay.png").size == (96, 96)
    key = json.loads((t / "key.json").read_text())
    assert key["size"] == {"width": 96, "height": 96} and len(key["palette"]) == len(LABELS)
    back = np.asarray(Image.open(t / "backdrop.png"), dtype=float) / 255
    assert back.min() >= 0.34  # lightened: strokes in palette colours stay visible on it
    with pytest.raises(SystemExit, match="^1$"):  # another shape than the sketch's
        main(["trace", str(hidden), "--out", str(tmp_path / "u"), "--size", "120x60"])


def test_xray_content_takes_luminance_from_the_xray_and_colour_from_the_scene():
    g = torch.Generator().manual_seed(0)
    scene = torch.rand(3, 32, 48, generator=g) * 2 - 1
    xray = torch.rand(1, 64, 96, generator=g)
    mixed = xray_content(scene, xray)
    y, iq = rgb_to_yiq(mixed[None])[:, :1], rgb_to_yiq(mixed[None])[:, 1:]
    small = torch.nn.functional.interpolate(xray[None], size=(32, 48), mode="bilinear", antialias=True)
    assert pearson(y, small) > 0.9
    assert pearson(iq, rgb_to_yiq(scene[None])[:, 1:]) > 0.9
    with pytest.raises(UserError, match="different shapes"):
        xray_content(scene, torch.rand(1, 64, 64))


def test_infer_nst_xray_stage_keeps_the_hidden_composition(case, tmp_path):
    """The painting's luminance follows the hidden X-ray: more than plain NST's does (random VGG, few steps)."""
    sketch = ROOT / "examples" / "sketches" / "synthetic_seed3.png"
    w, h = Image.open(sketch).size
    xray = torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    xray = torch.nn.functional.interpolate(xray, size=(h, w), mode="bicubic")[0].clamp(0, 1)
    Image.fromarray((xray[0].numpy() * 255).astype(np.uint8), "L").save(tmp_path / "hidden.png")
    common = ["module.vgg.weights=random", "module.vgg.arch=vgg16", "module.objective.style_layers=[relu1_1,relu2_1]",
              "pyramid=[{edge:32,steps:2},{edge:64,steps:2}]"]  # fmt: skip
    stage = [f"stage2.{s}.{o}" for s in ("nst", "nst_xray") for o in common]
    cfg = compose_train(["progress=false", f"input={sketch}", "infer/stage1=procedural", "infer/stage2=[nst,nst_xray]",
                         f"xray={tmp_path / 'hidden.png'}", "style.synthetic_size=64", *stage],
                        tmp_path / "run", config_name="infer")  # fmt: skip
    with pytest.warns(UserWarning, match="RANDOM"):
        (result,) = infer_run(cfg)
    assert result.ok, result.error
    assert "nst (x-ray structure)" in result.columns

    def luma(name):
        img = torch.from_numpy(np.asarray(Image.open(result.out_dir / name), dtype=np.float32) / 127.5 - 1)
        return rgb_to_yiq(img.permute(2, 0, 1)[None])[:, :1]

    guided, plain = pearson(luma("nst_xray.png"), xray), pearson(luma("nst.png"), xray)
    assert guided > 0.55 and guided > plain + 0.3, (guided, plain)  # measured 0.77 and -0.11
    with pytest.raises(UserError, match="`xray` is not set"):
        infer_run(compose_train(["progress=false", f"input={sketch}", "infer/stage1=procedural",
                                 "infer/stage2=[nst_xray]", *[f"stage2.nst_xray.{o}" for o in common]],
                                tmp_path / "run2", config_name="infer"))  # fmt: skip
