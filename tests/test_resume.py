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
