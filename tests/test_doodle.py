"""The neural doodle: its start image (region colours of the style, borrowed classes, noise), the data module, the
inference stage (`infer.py infer/stage1=none 'infer/stage2=[doodle]'`) and the tracked run
(`train.py experiment=doodle`). Random VGG weights here: these check wiring, outputs and errors; the MRF loss's
learning is tested in test_mrf.py."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ROOT
from tests.test_infer import infer_cfg
from underpainting.data.doodle import DoodleDataModule, doodle_start, region_colours
from underpainting.data.labels import LabelSet
from underpainting.errors import DataError, UserError
from underpainting.infer import run

LABELS = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")
STYLES = ROOT / "examples" / "styles"
SKETCH = ROOT / "examples" / "sketches" / "wild_vegetation.png"
SKY, GRASS, FLOWER, PERSON = (LABELS.id(n) for n in ("sky", "grass", "flower", "person"))


def two_class_style() -> tuple[torch.Tensor, torch.Tensor]:
    """A style whose top half (sky) is blue and bottom half (grass) green."""
    style = torch.empty(1, 3, 20, 20)
    style[0, :, :10] = torch.tensor([-0.6, -0.2, 0.8]).view(3, 1, 1)
    style[0, :, 10:] = torch.tensor([-0.4, 0.6, -0.5]).view(3, 1, 1)
    labels = torch.full((1, 20, 20), GRASS)
    labels[:, :10] = SKY
    return style, labels


def test_region_colours_use_the_class_the_borrow_table_names_or_the_whole_painting():
    style, labels = two_class_style()
    sketch = torch.tensor([[[SKY, FLOWER], [PERSON, GRASS]]])
    colours = region_colours(sketch, [style], [labels], LABELS.borrow)
    assert torch.allclose(colours[SKY], torch.tensor([-0.6, -0.2, 0.8]))
    assert torch.allclose(colours[FLOWER], colours[GRASS])  # flower borrows grass
    # nothing to borrow: the whole painting
    assert torch.allclose(colours[PERSON], torch.tensor([-0.5, 0.2, 0.15]))
    no_borrow = region_colours(sketch, [style], [labels], {})
    assert torch.allclose(no_borrow[FLOWER], no_borrow[PERSON])


def test_doodle_start_fills_the_regions_or_is_noise():
    style, labels = two_class_style()
    sketch = torch.full((1, 16, 24), GRASS)
    sketch[:, :6] = SKY
    start = doodle_start(sketch, [style], [labels], "regions", noise=0.05, seed=0, borrow=LABELS.borrow)
    assert start.shape == (1, 3, 16, 24)
    sky_mean = start[0][:, sketch[0] == SKY].mean(1)
    assert torch.allclose(sky_mean, torch.tensor([-0.6, -0.2, 0.8]), atol=0.03)
    assert 0.03 < float((start - doodle_start(sketch, [style], [labels], "regions", noise=0.0)).std()) < 0.07
    noise = doodle_start(sketch, [style], [labels], "noise", seed=1)
    lo, hi = 16 / 255 * 2 - 1, 240 / 255 * 2 - 1
    assert lo <= float(noise.min()) and float(noise.max()) <= hi and float(noise.std()) > 0.4
    with pytest.raises(DataError, match="init"):
        doodle_start(sketch, [style], [labels], "content")


def test_doodle_datamodule_builds_the_problem_and_names_what_is_missing():
    dm = DoodleDataModule(sketch=str(SKETCH), style=str(STYLES / "field_with_poppies_1889.jpg"),
                          style_labels=str(STYLES / "field_with_poppies_1889_labels.png"), labels=LABELS,
                          pyramid=[{"edge": 32, "steps": 2}])  # fmt: skip
    dm.setup()
    p = dm.problem
    assert p.content.shape == (1, 3, 256, 256) and p.content_labels.shape == (1, 256, 256)
    assert {SKY, GRASS, FLOWER} <= set(p.content_labels.unique().tolist())
    assert len(list(dm.train_dataloader())) == 2
    with pytest.raises(DataError, match="one label map per style"):
        DoodleDataModule(
            sketch=str(SKETCH), style=str(STYLES / "field_with_poppies_1889.jpg"), labels=LABELS
        ).setup()
    with pytest.raises(DataError, match="data.sketch"):
        DoodleDataModule(style="p.jpg", style_labels="p.png", labels=LABELS).setup()
    with pytest.raises(DataError, match="data.init"):
        DoodleDataModule(init="content")


TINY_DOODLE_STAGE = [
    "stage2.doodle.module.vgg.weights=random",
    "stage2.doodle.module.vgg.arch=vgg16",
    "stage2.doodle.module.objective.mrf.layers=[relu2_1]",
    "stage2.doodle.pyramid=[{edge:24,steps:2},{edge:48,steps:2}]",
]


def test_infer_paints_a_sketch_straight_from_the_doodle(tmp_path, caplog):
    cfg = infer_cfg(tmp_path, [
        f"input={SKETCH}", "infer/stage1=none", "infer/stage2=[doodle]", *TINY_DOODLE_STAGE,
        f"style.painting={STYLES / 'field_with_poppies_1889.jpg'}",
        f"style.labels={STYLES / 'field_with_poppies_1889_labels.png'}",
    ])  # fmt: skip
    with (
        warnings.catch_warnings(),
        caplog.at_level(logging.INFO, logger="underpainting.data.correspondences"),
    ):
        warnings.simplefilter("ignore")  # random weights
        (result,) = run(cfg)
    assert result.ok, result.error
    d = Path(cfg.paths.output_dir) / "wild_vegetation"
    painting = np.asarray(Image.open(d / "doodle.png"))
    assert painting.shape == (256, 256, 3) and painting.std() > 5
    assert set(result.columns) >= {"sketch", "labels", "sketch (no scene)", "doodle"}
    assert any(k.startswith("style: field_with_poppies") for k in result.columns)
    assert "cloud (not in the style) borrows sky" in caplog.text  # the painting has no clouds
    assert "mountain (not in the style) borrows grass" in caplog.text


def test_doodle_stage_without_a_painting_uses_the_synthetic_one_and_refuses_a_missing_label_map(tmp_path):
    cfg = infer_cfg(tmp_path, [f"input={SKETCH}", "infer/stage1=none", "infer/stage2=[doodle]",
                               *TINY_DOODLE_STAGE, "style.synthetic_size=64"])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (result,) = run(cfg)
    assert result.ok, result.error
    cfg = infer_cfg(tmp_path / "b", [f"input={SKETCH}", "infer/stage1=none", "infer/stage2=[doodle]",
                                     f"style.painting={STYLES / 'field_with_poppies_1889.jpg'}"])  # fmt: skip
    with pytest.raises(UserError, match="style.labels"):
        run(cfg)


def test_train_py_runs_the_doodle_experiment(make_cfg):
    from underpainting.train import run as train_run

    cfg = make_cfg([
        "experiment=doodle", "model.vgg.weights=random", "model.vgg.arch=vgg16", "model.objective.mrf.layers=[relu2_1]",
        "data.pyramid=[{edge: 24, steps: 3}, {edge: 32, steps: 2}]", "logger=csv", "callbacks.progress_bar=null",
        "callbacks.sample_grid.every_n_steps=4", "callbacks.model_checkpoint.every_n_train_steps=5",
    ])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = train_run(cfg)
    out = Path(cfg.paths.output_dir)
    assert np.asarray(Image.open(out / "nst" / "final.png")).shape == (32, 32, 3)
    assert {"train/mrf", "train/style", "train/total"} <= set(metrics)
    assert (out / "samples" / "train_step0000004.png").is_file()
