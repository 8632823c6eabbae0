"""The in-loop metrics callback on one process: checkpoint monitoring of val/fid, the every-n schedule, and the
end-of-training evaluation on patches used by NST."""

from __future__ import annotations

import json
import warnings

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint

from tests.test_metrics_ddp import Tiny
from underpainting.callbacks.metrics import MetricsCallback
from underpainting.metrics import Evaluator, LPIPSNet, RandomFeatures


class Learning(Tiny):
    def configure_optimizers(self):
        import torch

        return torch.optim.SGD(self.parameters(), lr=0.5)  # outputs change every epoch, so val/fid does too


def _callback(tmp_path, lpips_pairs: str = "reference", artfid: bool = False, **kw) -> MetricsCallback:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lp = LPIPSNet("alex", weights="random")
    evaluator = Evaluator(RandomFeatures(num_features=8), lp, lpips_pairs=lpips_pairs, artfid=artfid)
    return MetricsCallback(evaluator, output_dir=str(tmp_path), **kw)


def _trainer(tmp_path, callbacks, epochs=3, **kw) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        limit_train_batches=2,
        num_sanity_val_steps=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        default_root_dir=str(tmp_path),
        **kw,
    )


def test_checkpoint_monitors_val_fid_on_the_metric_schedule(tmp_path):
    ckpt = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", monitor="val/fid", mode="min", every_n_epochs=2, save_top_k=1
    )
    trainer = _trainer(tmp_path, [_callback(tmp_path, every_n_epochs=2), ckpt], epochs=4)
    trainer.fit(Learning())
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 3]  # (epoch + 1) % 2 == 0; the sanity check is skipped
    best = min(h["metrics"]["fid"] for h in history)
    assert float(ckpt.best_model_score) == pytest.approx(best, rel=1e-5)


def test_final_evaluation_on_patches(tmp_path):
    class Single(Learning):
        def eval_pairs(self, batch):
            x, y = (
                F.interpolate(t[:1], size=64, mode="bilinear") for t in self.val_dataloader().dataset.tensors
            )
            return {"generated": self(x), "reference": y, "source": x}

    cb = _callback(tmp_path, on_train_end=True, patch_size=32, lpips_pairs="source", artfid=True)
    trainer = _trainer(tmp_path, [cb], epochs=1)
    trainer.limit_val_batches = 0
    trainer.fit(Single())
    final = json.loads((tmp_path / "metrics.json").read_text())["final"]
    assert final["protocol"]["n_generated"] == 4  # one 64 px image -> four 32 px patches
    assert "32x32 patches" in final["protocol"]["summary"]
    assert trainer.callback_metrics["final/artfid"] == pytest.approx(final["metrics"]["artfid"])


class AutocastProbe(Tiny):
    """Records whether the networks ran under autocast: in validation_step, and in the metrics' eval_pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, set[bool]] = {"validation_step": set(), "eval_pairs": set()}

    def validation_step(self, batch, batch_idx):
        self.seen["validation_step"].add(torch.is_autocast_enabled("cpu"))

    def eval_pairs(self, batch):
        self.seen["eval_pairs"].add(torch.is_autocast_enabled("cpu"))
        return super().eval_pairs(batch)


def test_eval_pairs_runs_under_the_trainers_autocast(tmp_path):
    """A compiled network called outside the autocast of training and validation is one more graph variant: a
    recompile on the way to torch.compile's limit, after which it runs eagerly. The metrics see fp32 images."""
    model = AutocastProbe()
    trainer = _trainer(tmp_path, [_callback(tmp_path)], epochs=1, precision="bf16-mixed")
    trainer.fit(model)
    assert model.seen == {"validation_step": {True}, "eval_pairs": {True}}
    assert json.loads((tmp_path / "metrics.json").read_text())["val"]["metrics"]["fid"] is not None
