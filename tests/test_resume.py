"""Checkpoints hold the whole training state: a resumed run continues exactly where the first stopped (real kills
and signals: test_safe_stop.py; every checkpoint boundary: test_resume_boundaries.py)."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import TINY_CYCLEGAN, RecordLosses
from underpainting.checkpoints import AtomicCheckpointIO
from underpainting.train import run


def _train(make_cfg, overrides, subdir: str) -> RecordLosses:
    recorder = RecordLosses()
    run(make_cfg(overrides, subdir), extra_callbacks=[recorder])
    return recorder


# 8 items, batch 2: 4 batches an epoch; global_step counts both optimizers' steps, so 2 per batch.
RESUME = TINY_CYCLEGAN + [
    "model.scheduler.n_epochs=1",
    "model.scheduler.n_epochs_decay=2",
    "trainer.max_epochs=3",
    "callbacks.model_checkpoint.every_n_train_steps=6",
    "callbacks.sample_grid.every_n_steps=0",
    "trainer.log_every_n_steps=1",
    "model.G_AB.dropout=true",
]


def test_resume_mid_epoch_continues_exactly(make_cfg, tmp_path):
    full = _train(make_cfg, RESUME + ["trainer.max_steps=20"], "full")
    first = _train(make_cfg, RESUME + ["trainer.max_steps=6"], "first")  # stops mid-epoch 0 (batch 3/4)
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    state = torch.load(ckpt, weights_only=True)
    assert state["global_step"] == 6
    assert {"image_pools", "rng", "optimizer_states", "lr_schedulers", "underpainting_config"} <= set(state)
    resumed = _train(make_cfg, RESUME + ["trainer.max_steps=20", f"ckpt_path={ckpt}"], "resumed")

    assert min(resumed.losses) == 8, "the resumed run starts at the next step"
    for step in range(8, 21, 2):
        for name, value in full.losses[step].items():
            assert resumed.losses[step][name] == pytest.approx(value, rel=1e-5, abs=1e-6), (step, name)
        assert resumed.lrs[step] == pytest.approx(full.lrs[step])
    assert first.losses[6] == pytest.approx(full.losses[6])
    assert full.lrs[20] < full.lrs[2], "the linear decay is active in the compared steps"


def test_atomic_save_keeps_previous_checkpoint_when_interrupted(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, path)

    def dying_save(obj, f, *a, **k):
        f.write(b"partial bytes")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": torch.tensor(2)}, path)
    monkeypatch.undo()
    assert io.load_checkpoint(path)["step"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"], "no temporary file is left behind"


def test_a_read_only_checkpoint_folder_says_so_not_the_cleanup(tmp_path, monkeypatch):
    """On a read-only disk the temporary file cannot be written, nor removed: the user gets CheckpointWriteError
    (what failed and what to do), not the OSError of the cleanup that used to bury it."""
    import errno
    from pathlib import Path

    from underpainting.errors import CheckpointWriteError

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("builtins.open", read_only)
    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(CheckpointWriteError, match="Read-only file system.*previous checkpoint is intact"):
        AtomicCheckpointIO().save_checkpoint({"step": torch.tensor(1)}, tmp_path / "last.ckpt")


def test_resume_in_the_same_folder_continues_the_loggers_histories(make_cfg, tmp_path, monkeypatch):
    """docs/training.md: resumed in its folder (SLURM requeue), a run keeps the first segment's metrics.csv rows,
    adds TensorBoard events beside the old ones, and logs into the same W&B run (offline here)."""
    import csv

    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    wandb.finish()  # a run another test left open would be reused by the logger instead of this folder's

    logged = RESUME + ["logger=many_loggers", "callbacks.model_checkpoint.every_n_train_steps=4"]
    run(make_cfg(logged + ["trainer.max_steps=8"], "run"))
    rows = list(csv.DictReader((tmp_path / "run" / "csv" / "metrics.csv").open()))
    first = sorted({int(r["step"]) for r in rows})
    events = sorted((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    wandb_runs = sorted((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert first == [0, 1, 2, 3] and events and len(wandb_runs) == 1
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    run(make_cfg(logged + ["trainer.max_steps=16", f"ckpt_path={ckpt}"], "run"))
    rows = list(csv.DictReader((tmp_path / "run" / "csv" / "metrics.csv").open()))
    steps = [int(r["step"]) for r in rows if r.get("train/G_total")]
    assert sorted(set(steps)) == list(range(8)) and len(steps) == len(set(steps))  # both segments, once each
    assert set(events) < set((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    ids = {p.name.rsplit("-", 1)[1] for p in (tmp_path / "run" / "wandb").glob("offline-run-*")}
    assert len(ids) == 1, ids  # the second segment resumed the first's run id
