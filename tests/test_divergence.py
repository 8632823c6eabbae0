"""A diverged run stops within `log_every_n_steps` steps with a message naming the step, the loss and the keys to
look at, exits non-zero, and never writes (or replaces) a checkpoint; inference refuses a broken checkpoint."""

from __future__ import annotations

import subprocess
import sys
import warnings

import lightning.pytorch as pl
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


class InfGradients(pl.Callback):
    """Every backward leaves inf gradients (finite losses): the GradScaler skips each step and halves its scale."""

    def on_after_backward(self, trainer, pl_module) -> None:
        for p in pl_module.parameters():
            if p.grad is not None:
                p.grad.fill_(float("inf"))


class RecordScale(RecordLosses):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self.losses[trainer.global_step]["scale"] = float(trainer.callback_metrics["amp/loss_scale"])


def _fp16_on_cpu(cfg) -> None:
    """16-mixed with loss scaling on the CPU: an explicit plugin (Lightning turns CPU `precision=16-mixed` into bf16).
    The scale starts at 4, so an overflowing run goes below 1 within two batches (G and D steps halve it)."""
    cfg.trainer.precision = None
    scaler = {"_target_": "torch.amp.GradScaler", "device": "cpu", "init_scale": 4.0}
    plugin = {
        "_target_": "lightning.pytorch.plugins.MixedPrecision",
        "precision": "16-mixed",
        "device": "cpu",
    }
    cfg.trainer.plugins.append({**plugin, "scaler": scaler})


@pytest.mark.parametrize("overflowing", [True, False])
def test_a_stalled_fp16_loss_scale_stops_the_run(make_cfg, tmp_path, overflowing):
    rec = RecordScale()
    cfg = make_cfg([*FAST, "trainer.log_every_n_steps=1", "trainer.max_steps=16"])
    _fp16_on_cpu(cfg)
    extra = [InfGradients()] if overflowing else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not overflowing:
            run(cfg, extra_callbacks=[rec])
            assert all(rec.losses[s]["scale"] >= 1 for s in rec.losses), "a healthy run goes on"
            assert max(rec.losses) == 16
            return
        with pytest.raises(TrainingDiverged, match="fp16 loss scale has stayed below 1 for 3 checks") as err:
            run(cfg, extra_callbacks=[rec, *extra])
    assert "trainer.precision=bf16-mixed" in str(err.value)
    assert all(torch.isfinite(torch.tensor(list(v.values()))).all() for v in rec.losses.values()), (
        "losses finite"
    )
    scales = [rec.losses[s]["scale"] for s in sorted(rec.losses)]
    assert scales[0] <= 2 and scales[-1] < 1, "logged every step"
    assert max(rec.losses) <= 2 * 5, "stopped at the third check below 1 (batch 5 at the latest)"
    assert not list(tmp_path.rglob("*.ckpt")), "no checkpoint from the stalled state"
