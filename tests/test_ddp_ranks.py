"""Two gloo ranks (`trainer=ddp_cpu`) training pix2pix with weight averages: what each rank draws, which buffers DDP
broadcasts, which validation images each rank sees, and a resume that gives every rank its own random streams back.

Run A trains two epochs and keeps its step-4 checkpoint (the end of epoch 1); run B resumes from it for epoch 2."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from tests.conftest import ROOT
from tests.test_pix2pix import TINY_PIX2PIX

pytestmark = pytest.mark.slow


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha1(t.detach().float().cpu().numpy().tobytes()).hexdigest()[:12]


class Probe(pl.Callback):
    """Written to `<out>/rank<r>.json`: the global RNG after each step, the buffers DDP broadcasts, the validation
    images seen (per epoch)."""

    def __init__(self, out: str) -> None:
        self.out, self.rng, self.val, self.synced = Path(out), {}, {}, []

    def on_train_start(self, trainer, pl_module) -> None:
        self.synced = sorted(trainer.strategy.model.named_module_buffers)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.rng[trainer.global_step] = _digest(torch.get_rng_state())

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking:
            self.val.setdefault(trainer.current_epoch, []).extend(_digest(x) for x in batch["image"])

    def on_train_end(self, trainer, pl_module) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        record = {"rng": self.rng, "val": self.val, "synced": self.synced, "world": trainer.world_size}
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


def _train(run_dir: Path, probe: Path, *extra: str) -> None:
    args = [
        *TINY_PIX2PIX,
        "trainer=ddp_cpu",
        "data.num_val=3",  # odd: a padded shard would show one image twice
        "model.ema_decay=0.9",
        "callbacks.model_checkpoint.every_n_train_steps=4",
        "callbacks.model_checkpoint.save_top_k=-1",
        "callbacks.sample_grid.every_n_steps=2",  # rank 0 renders alone, in the paper protocol
        "+callbacks.probe._target_=tests.test_ddp_ranks.Probe",
        f"+callbacks.probe.out={probe}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    r = subprocess.run(
        [sys.executable, "train.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=400
    )
    assert r.returncode == 0, r.stderr[-3000:]


def _ranks(probe: Path) -> list[dict]:
    return [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp_ranks")
    _train(tmp / "a", tmp / "probe_a", "trainer.max_epochs=2")
    ckpt = tmp / "a" / "checkpoints" / "step0000004.ckpt"
    _train(tmp / "b", tmp / "probe_b", "trainer.max_epochs=2", f"ckpt_path={ckpt}")
    return tmp


def test_each_rank_draws_its_own_noise(runs):
    """Every rank seeded alike drew the same dropout masks (and SPADE's VAE noise) for its different images."""
    a = _ranks(runs / "probe_a")
    assert a[0]["world"] == 2 and set(a[0]["rng"]) == set(a[1]["rng"]) == {"2", "4", "6", "8"}
    assert all(a[0]["rng"][s] != a[1]["rng"][s] for s in a[0]["rng"])


def test_ddp_broadcasts_the_networks_buffers_not_the_averages(runs):
    for rank in _ranks(runs / "probe_a"):
        assert any(k.startswith("G.") for k in rank["synced"]), "batch-norm statistics are synced"
        assert not [k for k in rank["synced"] if k.startswith("ema.")]


def test_validation_sees_every_image_once(runs):
    """3 validation images on 2 ranks: 2 + 1, not 2 + 2 with one counted twice in the epoch's metrics."""
    a = _ranks(runs / "probe_a")
    for epoch in ("0", "1"):
        seen = a[0]["val"][epoch] + a[1]["val"][epoch]
        assert len(seen) == len(set(seen)) == 3, seen


def test_resume_gives_every_rank_its_own_streams_back(runs):
    a, b = _ranks(runs / "probe_a"), _ranks(runs / "probe_b")
    for rank in (0, 1):
        assert b[rank]["rng"] == {s: a[rank]["rng"][s] for s in ("6", "8")}, f"rank {rank}"
    ckpt = torch.load(runs / "a" / "checkpoints" / "step0000004.ckpt", weights_only=True)
    assert len(ckpt["rng_by_rank"]) == 2
    end_a = torch.load(runs / "a" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    end_b = torch.load(runs / "b" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(end_a[k], end_b[k]) for k in end_a), "the resumed run ends on the same weights"
