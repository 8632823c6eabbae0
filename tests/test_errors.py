"""The mistakes a new user makes get one paragraph naming the key or file and the fix, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import warnings

import pytest
import torch

from tests.conftest import ROOT, TINY_CYCLEGAN
from underpainting.checkpoints import AtomicCheckpointIO
from underpainting.errors import CheckpointWriteError, ConfigError, UserError
from underpainting.train import run

FAST = [*TINY_CYCLEGAN, "callbacks.sample_grid.every_n_steps=0"]


def _run(cfg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(cfg)


def test_wrong_type_names_the_key(make_cfg):
    with pytest.raises(ConfigError) as err:
        _run(make_cfg([*FAST, "trainer.max_steps=abc", "model.lambda_A=ten"]))
    msg = str(err.value)
    assert "trainer.max_steps='abc' is not valid: Trainer takes max_steps: int" in msg
    assert "model.lambda_A='ten' is not valid: CycleGAN takes lambda_A: float" in msg


def test_every_shipped_config_passes_the_type_check(make_cfg):
    from underpainting.config.checks import check_types

    for exp in ("quickstart", "spade_quickstart", "pix2pix_quickstart", "nst_quickstart", "nst_semantic"):
        check_types(
            make_cfg(
                [f"experiment={exp}", "trainer=gpu", "callbacks=[default,metrics]", "logger=many_loggers"]
            )
        )


def test_experiment_for_synthetic_data_says_so(make_cfg, tmp_path):
    with pytest.raises(ConfigError) as err:
        _run(
            make_cfg(
                ["experiment=quickstart", "data=vangogh_landscapes", f"data.root={tmp_path}", "logger=none"]
            )
        )
    msg = str(err.value)
    assert msg.startswith("`data.image_size` is not a setting of VanGoghLandscapes (data=vangogh_landscapes)")
    assert "experiment=quickstart, which is made for data=synthetic only" in msg


def test_nst_model_without_nst_data_says_to_add_it(make_cfg):
    with pytest.raises(
        UserError, match=r"model=nst needs its own data, not SyntheticUnpaired: add `data=nst"
    ):
        _run(make_cfg(["model=nst", "logger=none", "callbacks.progress_bar=null", "data.num_workers=0"]))


def test_disk_full_names_the_file_and_keeps_the_previous_checkpoint(make_cfg, tmp_path):
    """A real ENOSPC: the temporary file the save writes is a link to /dev/full."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    io, path = AtomicCheckpointIO(), tmp_path / "c" / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    os.symlink("/dev/full", path.with_name(f".last.ckpt.{os.getpid()}.tmp"))
    with pytest.raises(CheckpointWriteError, match=rf"^No space left on device writing {path} \(") as err:
        io.save_checkpoint({"step": torch.tensor(2), "w": torch.zeros(10000)}, path)
    assert "previous checkpoint is intact" in str(err.value) and "\n" not in str(err.value)
    assert io.load_checkpoint(path)["step"].item() == 1 and [p.name for p in path.parent.iterdir()] == [
        "last.ckpt"
    ]

    ckpts = tmp_path / "run" / "checkpoints"  # the same through a training run
    ckpts.mkdir(parents=True)
    for name in ("step0000002.ckpt", "last.ckpt"):
        os.symlink("/dev/full", ckpts / f".{name}.{os.getpid()}.tmp")
    with pytest.raises(
        CheckpointWriteError, match="No space left on device writing .*checkpoints/step0000002.ckpt"
    ):
        _run(make_cfg([*FAST, "trainer.max_steps=2"], "run"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_wandb_fails_fast_with_the_way_out(make_cfg, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)  # stale
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")  # no server: no network needed
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        _run(make_cfg([*FAST, "logger=wandb"]))
    assert time.monotonic() - start < 15
    assert "cannot be reached" in str(err.value)
    assert "WANDB_MODE=offline" in str(err.value) and "logger=tensorboard" in str(err.value)


def test_wandb_goes_offline_by_itself_without_a_key(tmp_path):
    """A clean environment: no WANDB_* variables, a HOME without .netrc or wandb settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(ROOT / "src"))
    code = (
        "import wandb; from underpainting.tracking.wandb_mode import configure_wandb_mode; "
        "print('mode', configure_wandb_mode(preflight=True)); "
        f"run = wandb.init(project='t', dir={str(tmp_path)!r}); run.log({{'x': 1}}); run.finish()"
    )
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "mode offline" in r.stdout
    assert list((tmp_path / "wandb").glob("offline-run-*"))
