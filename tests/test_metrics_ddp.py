"""In-loop metrics under DDP on CPU: two ranks each see half the validation set, and the logged numbers equal those
of one process over the whole set (torchmetrics states are reduced across ranks before computing)."""

from __future__ import annotations

import json
import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from underpainting.callbacks.metrics import MetricsCallback
from underpainting.metrics import Evaluator, LPIPSNet, RandomFeatures


def _data() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 32, 32, generator=g) * 2 - 1
    y = (x * 0.7 + 0.2 * torch.rand(8, 3, 32, 32, generator=g)).clamp(-1, 1)
    return TensorDataset(x, y)


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, x):
        return torch.tanh(self.scale * x)

    def training_step(self, batch, batch_idx):
        return (self(batch[0]) - batch[1]).abs().mean()

    def validation_step(self, batch, batch_idx):
        pass

    def eval_pairs(self, batch):
        return {"generated": self(batch[0]), "reference": batch[1], "source": batch[0]}

    def configure_optimizers(self):
        return torch.optim.SGD(
            self.parameters(), lr=0.0
        )  # weights stay put: the single-process check matches

    def train_dataloader(self):
        return DataLoader(_data(), batch_size=2)

    def val_dataloader(self):
        return DataLoader(_data(), batch_size=2)


def _callback(tmp_path) -> MetricsCallback:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lp = LPIPSNet("alex", weights="random")
    return MetricsCallback(Evaluator(RandomFeatures(num_features=16), lp), output_dir=str(tmp_path))


@pytest.mark.slow
def test_metrics_sync_across_two_cpu_ranks(tmp_path):
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=1,
        limit_train_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[_callback(tmp_path)],
        default_root_dir=str(tmp_path),
    )
    trainer.fit(Tiny())
    logged = json.loads((tmp_path / "metrics.json").read_text())["val"]
    assert logged["protocol"]["n_generated"] == 8 and logged["protocol"]["n_reference"] == 8  # 4 per rank

    model, ev = Tiny(), _callback(tmp_path).evaluator
    for x, y in DataLoader(_data(), batch_size=4):
        pairs = model.eval_pairs((x, y))
        ev.update(pairs["generated"], pairs["reference"])
    single = ev.compute()["metrics"]
    for key in ("fid", "lpips"):
        assert logged["metrics"][key] == pytest.approx(single[key], rel=1e-4, abs=1e-6), key
    # KID's subsets are drawn by position (as torch-fidelity draws them) and the ranks' features arrive in another
    # order than one process reads them: a different draw of the same estimator, so equal within its spread
    assert logged["metrics"]["kid_std"] > 0 and single["kid_std"] > 0
    assert abs(logged["metrics"]["kid"] - single["kid"]) < logged["metrics"]["kid_std"] + single["kid_std"]
