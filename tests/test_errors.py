"""The mistakes a new user makes get one paragraph naming the key or file and the fix, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from hydra.errors import InstantiationException

from tests.conftest import ROOT, TINY_CYCLEGAN
from underpainting.checkpoints import AtomicCheckpointIO
from underpainting.errors import CheckpointWriteError, ConfigError, UserError, exit_on_user_error, user_error
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

    gans = ("quickstart", "spade_quickstart", "pix2pix_quickstart")
    for exp in (*gans, "nst_quickstart", "nst_semantic", "doodle"):
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


def test_nst_objective_keys_are_named_under_their_own_node(make_cfg):
    """The objective is a `_partial_` child that the module calls: a wrong value or a misspelt key is named with its
    full key and the class it belongs to (a key of a partial child used to be blamed on NeuralStyleTransfer)."""
    nst = ["experiment=nst_quickstart", "logger=none", "callbacks.progress_bar=null"]
    with pytest.raises(ConfigError, match=r"objective.style_weight='heavy' is not valid: NSTObjective takes"):
        _run(make_cfg([*nst, "model.objective.style_weight=heavy"]))
    with pytest.raises(ConfigError, match=r"^`model.objective.stye_weight` is not a setting of NSTObjective"):
        _run(make_cfg([*nst, "+model.objective.stye_weight=1e3"]))
    with pytest.raises(ConfigError, match=r"^`model.objective.mrf.patch` is not a setting of MRFStyleLoss"):
        _run(make_cfg([*nst, "model.objective.style_loss=mrf", "+model.objective.mrf.patch=3"]))


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


def test_a_failed_run_ends_its_wandb_run_so_the_next_run_in_the_process_logs_its_own(make_cfg, tmp_path):
    """Lightning's WandbLogger reuses an active `wandb.run`: a run that failed after W&B started must end it, or
    the next run in the same process (a Hydra multirun's next trial) logs into the failed one."""
    import lightning.pytorch as pl
    import wandb

    class Boom(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            raise UserError("stopped on purpose")

    with pytest.raises(UserError, match="on purpose"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run(make_cfg([*FAST, "logger=wandb", "run_name=failed"], "failed"), extra_callbacks=[Boom()])
    assert wandb.run is None
    cfg = make_cfg([*FAST, "logger=wandb", "run_name=next", "trainer.max_steps=2"], "next")
    _run(cfg)
    assert list((Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*"))


def _failing(exc: BaseException):
    @exit_on_user_error
    def main(code: int = 0) -> int:
        if code:
            return code
        raise exc

    return main


def test_entry_point_wrapper_turns_a_user_error_into_one_line_and_exit_1(capsys, caplog):
    assert _failing(ConfigError("never raised"))(3) == 3  # what the entry point returns passes through
    for exc in (
        ConfigError("data.root=x: no such folder"),
        InstantiationException("Error in call to target 'X'"),  # Hydra's wrapper around a constructor's error
    ):
        if isinstance(exc, InstantiationException):
            exc.__cause__ = ConfigError("data.root=x: no such folder")
        with pytest.raises(SystemExit) as done:
            _failing(exc)()
        assert done.value.code == 1
        assert capsys.readouterr().err == "error: data.root=x: no such folder\n"  # the cause, not Hydra's
        assert [r.getMessage() for r in caplog.records] == ["data.root=x: no such folder"]  # the run's log
        caplog.clear()


def test_entry_point_wrapper_lets_other_errors_and_argparse_exits_through(capsys):
    wrapped = InstantiationException("Error in call to target 'X'")
    wrapped.__cause__ = TypeError("a bug")
    for exc in (ValueError("a bug"), wrapped, SystemExit(2)):
        with pytest.raises(type(exc)) as err:
            _failing(exc)()
        assert err.value is exc
    assert capsys.readouterr().err == ""
    assert user_error(wrapped) is None and user_error(KeyError("k")) is None


def test_entry_point_wrapper_reraises_in_a_multirun_so_the_sweep_records_it(capsys, caplog):
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose("train", overrides=["hydra.mode=MULTIRUN"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    exc = InstantiationException("Error in call to target 'X'")
    exc.__cause__ = ConfigError("model.lambda_A=-1 must be positive")
    try:
        with pytest.raises(InstantiationException) as err:
            _failing(exc)()
    finally:
        HydraConfig.instance().cfg = None
    assert err.value is exc and capsys.readouterr().err == ""
    assert [r.getMessage() for r in caplog.records] == ["model.lambda_A=-1 must be positive"]
