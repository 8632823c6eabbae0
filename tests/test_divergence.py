"""A diverged run stops within `log_every_n_steps` steps with a message naming the step, the loss and the keys to
look at, exits non-zero, and never writes (or replaces) a checkpoint; inference refuses a broken checkpoint."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

from tests.conftest import ROOT, TINY_CYCLEGAN, RecordLosses
from underpainting.checkpoints import build_model
from underpainting.errors import TrainingDiverged, WeightsError
from underpainting.train import run

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = [*TINY_CYCLEGAN, "callbacks.sample_grid.every_n_steps=0", "trainer.log_every_n_steps=3"]


def _run(cfg, rec=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(cfg, extra_callbacks=[rec] if rec else [])


@pytest.mark.parametrize(
    "override, first",
    [
        ("model.lambda_A=nan", "at step 2: the loss term train/cycle_A = nan is not finite"),
        # lr 1e6: the losses reach ~1e15 but stay finite; the bound catches them
        ("model.optimizer_G.lr=1e6", "at step 4: the loss term train/G_AB = .* exceeds the bound 1e\\+06"),
    ],
)
def test_diverged_run_stops_within_the_check_interval_without_a_checkpoint(
    make_cfg, tmp_path, override, first
):
    rec = RecordLosses()
    cfg = make_cfg([*FAST, override, "callbacks.model_checkpoint.every_n_train_steps=1000"])
    with pytest.raises(TrainingDiverged, match=first) as err:
        _run(cfg, rec)
    msg = str(err.value)
    key = override.split("=")[0]
    assert f"{key} (now {float(override.split('=')[1]):g})" in msg, "names the setting to look at"
    assert "trainer.precision" in msg and "No checkpoint had been written yet" in msg and "\n" not in msg
    assert max(rec.losses) <= 2 * 3, "stopped at the first check (every 3 batches = 6 steps)"
    assert not list(tmp_path.rglob("*.ckpt")), "no checkpoint from the diverged state"


def test_a_run_that_diverges_later_never_replaces_the_good_checkpoint(make_cfg, tmp_path):
    good = tmp_path / "good"
    common = [
        *FAST,
        f"callbacks.model_checkpoint.dirpath={good}",
        "callbacks.model_checkpoint.every_n_train_steps=2",
    ]
    _run(make_cfg([*common, "trainer.max_steps=4"], "a"))
    before = (good / "last.ckpt").read_bytes()
    # Resumed into the same folder with a loss weight gone wrong: its first save (step 6) would replace last.ckpt.
    cfg = make_cfg([*common, "model.lambda_A=nan", f"ckpt_path={good / 'last.ckpt'}"], "b")
    with pytest.raises(TrainingDiverged, match="at step 6") as err:
        _run(cfg)
    assert f"The last good checkpoint is {good / 'last.ckpt'}" in str(err.value)
    assert (good / "last.ckpt").read_bytes() == before
    assert sorted(p.name for p in good.iterdir()) == ["last.ckpt", "step0000004.ckpt"]


def test_train_py_exits_1_with_one_paragraph(tmp_path):
    r = subprocess.run(
        [sys.executable, "train.py", *FAST, "model.lambda_B=nan", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "error: training diverged at step 2" in r.stderr
    assert "diverged at step 2" in (tmp_path / "train.log").read_text()


def _broken_checkpoint(make_cfg, tmp_path, how: str):
    _run(make_cfg([*FAST, "trainer.max_steps=2"], "src"))
    ckpt = torch.load(tmp_path / "src" / "checkpoints" / "last.ckpt", weights_only=True)
    sd = ckpt["state_dict"]
    last = [k for k in sd if k.startswith("G_BA.") and k.endswith("weight")][-1]
    if how == "nan":
        sd[last][0] = float("nan")
    else:  # weights 0, bias 100: tanh gives +1 everywhere - the all-white/black picture that reported `ok`
        sd[last].zero_()
        sd[last.replace("weight", "bias")].fill_(100.0)
    path = tmp_path / f"{how}.ckpt"
    torch.save(ckpt, path)
    return path


def test_inference_refuses_non_finite_weights_and_flat_outputs(make_cfg, tmp_path):
    from underpainting.data.labels import LabelSet
    from underpainting.inference.stages import CycleGANPainting

    labels = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")
    nan = _broken_checkpoint(make_cfg, tmp_path, "nan")
    with pytest.raises(WeightsError, match=r"nan\.ckpt holds non-finite weights \(nan/inf in 1 tensors"):
        build_model(nan)
    flat = _broken_checkpoint(make_cfg, tmp_path, "flat")
    with pytest.raises(WeightsError, match=r"flat\.ckpt: the painting is one flat colour"):
        CycleGANPainting(str(flat)).setup(labels, torch.device("cpu"))
