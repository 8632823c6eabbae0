"""Exact resume at every place a checkpoint is written: mid-epoch, on the last batch of an epoch, at the epoch's end,
after validation - for every model. The resumed run must end bitwise equal (fp32, CPU) to the run that never
stopped: weights, optimizer states, learning rates and the losses of every later step."""

from __future__ import annotations

import warnings

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from tests.conftest import TINY_CYCLEGAN, RecordLosses
from tests.test_nst import TINY_NST
from tests.test_pix2pix import TINY_PIX2PIX
from tests.test_spade_training import TINY_SPADE, WITH_ENCODER
from underpainting.train import run

pytestmark = pytest.mark.usefixtures("one_thread")

# 6 items, batch 2: 3 batches an epoch, 2 optimizer steps (G, D) a batch -> epoch 0 ends at step 6.
COMMON = [
    "data.num_train=6",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "callbacks.sample_grid.every_n_steps=0",
    "callbacks.model_checkpoint.every_n_train_steps=1000",
]
DECAY = (
    "{_target_: underpainting.models.schedules.LinearDecay, _partial_: true, n_epochs: 1, n_epochs_decay: 1}"
)
MODELS = {
    "cyclegan": [*TINY_CYCLEGAN, "model.G_AB.dropout=true", f"model.scheduler={DECAY}"],
    "spade": [*TINY_SPADE, *WITH_ENCODER, f"model.scheduler={DECAY}", "model.ema_decay=0.9"],
    "pix2pix": [
        *TINY_PIX2PIX,
        f"model.scheduler={DECAY}",
        "model.ema_decay=0.9",
    ],  # averages resume exactly too
}
# (checkpoint, what it is): b = ModelCheckpoint on a train batch end, e = at the train epoch end, v = after
# validation. The last batch of epoch 0 is the case that came back one LR step behind.
BOUNDARIES = {
    "cyclegan": ["b2", "b6", "e6", "v6"],
    "spade": ["b6", "v6"],
    "pix2pix": ["b6", "e6"],
}


def _boundary_checkpoints(out) -> list[ModelCheckpoint]:
    common = dict(save_top_k=-1, auto_insert_metric_name=False, save_last=False)
    return [
        ModelCheckpoint(dirpath=out / "b", filename="b{step}", every_n_train_steps=2, **common),
        ModelCheckpoint(
            dirpath=out / "e", filename="e{step}", every_n_epochs=1, save_on_train_epoch_end=True, **common
        ),
        ModelCheckpoint(
            dirpath=out / "v",
            filename="v{step}",
            every_n_epochs=1,
            save_on_train_epoch_end=False,
            monitor="step",  # a distinct state key; every validation end saves (top_k=-1)
            mode="max",
            **common,
        ),
    ]


def _run(make_cfg, overrides, subdir, callbacks=()) -> tuple[RecordLosses, dict]:
    rec = RecordLosses()
    cfg = make_cfg(overrides, subdir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(cfg, extra_callbacks=[rec, *callbacks])
    return rec, torch.load(cfg.paths.output_dir + "/checkpoints/last.ckpt", weights_only=True)


def assert_same_state(a: dict, b: dict) -> None:
    assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    for oa, ob in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        assert [g["lr"] for g in oa["param_groups"]] == [g["lr"] for g in ob["param_groups"]]
        for i, s in oa["state"].items():
            for name, t in s.items():
                assert torch.equal(torch.as_tensor(t), torch.as_tensor(ob["state"][i][name])), (i, name)
    assert a.get("lr_schedulers") == b.get("lr_schedulers")


@pytest.mark.parametrize("model", list(MODELS))
def test_resume_at_every_boundary_is_bitwise(make_cfg, tmp_path, model):
    overrides = [*MODELS[model], *COMMON]
    full, ref = _run(make_cfg, overrides, "full", _boundary_checkpoints(tmp_path / "full"))
    assert any(k.startswith("ema.") for k in ref["state_dict"]) == (model != "cyclegan")
    assert ref["global_step"] == 12 and full.lrs[12] < full.lrs[2], "the LR decays within the compared steps"
    for name in BOUNDARIES[model]:
        ckpt = tmp_path / "full" / name[0] / f"{name}.ckpt"
        assert ckpt.is_file(), name
        resumed, state = _run(make_cfg, [*overrides, f"ckpt_path={ckpt}"], name)
        assert_same_state(state, ref)
        later = sorted(resumed.losses)
        assert later[0] == int(name[1:]) + 2, (name, later[:3])
        for step in later:
            assert resumed.losses[step] == full.losses[step], (name, step)
            assert resumed.lrs[step] == full.lrs[step], (name, step)


def test_resumed_twice_at_epoch_boundaries_is_bitwise(make_cfg, tmp_path):
    """A job killed at two epoch boundaries: the second checkpoint comes from a resumed run. Lightning left that
    epoch uncounted and the run resumed from it trained the epoch twice (24 steps instead of 18; ExactResume)."""
    overrides = [*MODELS["cyclegan"], *COMMON, "trainer.max_epochs=3"]
    _, ref = _run(make_cfg, overrides, "full", _boundary_checkpoints(tmp_path / "full")[:1])
    _run(make_cfg, [*overrides, f"ckpt_path={tmp_path / 'full' / 'b' / 'b6.ckpt'}"], "r1",
         _boundary_checkpoints(tmp_path / "r1")[:1])  # fmt: skip
    _, state = _run(make_cfg, [*overrides, f"ckpt_path={tmp_path / 'r1' / 'b' / 'b12.ckpt'}"], "r2")
    assert_same_state(state, ref)


def test_nst_resumes_bitwise_mid_level_and_at_the_level_boundary(make_cfg, tmp_path):
    """Steps 0-3 are pyramid level 0 (24 px), 4-6 level 1 (32 px): resume inside level 0 and after its last step."""
    overrides = [o for o in TINY_NST if not o.startswith(("logger=", "callbacks.sample_grid"))]
    overrides += ["logger=none", "callbacks.sample_grid.every_n_steps=0"]
    steps = ModelCheckpoint(
        dirpath=tmp_path / "full" / "b",
        filename="b{step}",
        every_n_train_steps=1,
        save_top_k=-1,
        auto_insert_metric_name=False,
    )
    full, ref = _run(make_cfg, overrides, "full", [steps])
    assert ref["global_step"] == 7
    for step in (2, 4):
        resumed, state = _run(
            make_cfg, [*overrides, f"ckpt_path={tmp_path / 'full' / 'b' / f'b{step}.ckpt'}"], f"r{step}"
        )
        assert torch.equal(state["state_dict"]["image"], ref["state_dict"]["image"]), step
        assert state["nst_level"] == ref["nst_level"] == 1
        for s in sorted(resumed.losses):
            assert resumed.losses[s] == full.losses[s], (step, s)


def test_loader_resumed_after_an_epoch_with_workers_draws_the_next_epoch():
    """With DataLoader workers the iterator - and the sampler's order - is made at resume, before Lightning calls
    set_epoch: a checkpoint from the epoch's last batch used to give an empty epoch (8 steps lost here)."""
    from underpainting.data.sampling import DrawSampler, ResumableDataLoader

    def loader() -> ResumableDataLoader:
        return ResumableDataLoader(_Items(), DrawSampler(8, shuffle=True, seed=3), lambda: 0, batch_size=2,
                                   num_workers=2, persistent_workers=True)  # fmt: skip

    expected = loader()
    expected.sampler.set_epoch(2)
    resumed = loader()
    resumed.load_state_dict({"epoch": 1, "batches": 4})  # saved after batch 4 of 4 of epoch 1
    it = iter(resumed)
    resumed.sampler.set_epoch(2)
    assert [b.tolist() for b in it] == [b.tolist() for b in expected]


class _Items(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, item):
        return item[0]
