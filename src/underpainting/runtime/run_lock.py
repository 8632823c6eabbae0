"""A run folder belongs to one run while it runs.

Two runs started in the same `hydra.run.dir` mixed their checkpoints in one folder (`last.ckpt` of one, `last-v1.ckpt`
of the other) and one died in the CSV logger. Now the first run holds an advisory lock on `<run dir>/.run.lock`
(`flock`) and a second live run is refused in one paragraph naming the holder. The kernel drops the lock when its
process ends, however it ends (exit, crash, SIGKILL, power loss), so a crashed run never leaves a stuck lock, and a
resumed or requeued run (same folder, `ckpt_path=...`) takes it again. The file stays: it names the last holder.

Taken twice: by the Hydra callback `RunFolderLock` before Hydra writes `.hydra/` into the folder (a refused run must
not overwrite the live run's config), and by `train.run` (runs composed in code: the X-ray command, tests, each job of
a multirun). Only global rank 0 takes it: DDP ranks share their rank 0's folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from underpainting.errors import UserError
from underpainting.runtime.destinations import writable_folder

LOCK_NAME = ".run.lock"
_held: dict[Path, int] = {}  # folder -> open file descriptor holding its lock, for this process


class RunFolderBusy(UserError):
    """The run folder is in use by another live run."""


def is_rank_zero() -> bool:
    """Whether this process is global rank 0 (or not distributed): the environment the launchers set."""
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"):
        if int(os.environ.get(var, "0") or 0) != 0:
            return False
    return True


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another run"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return f"run pid {info.get('pid')} on {info.get('host')}, started {started}: `{info.get('command', '?')}`"


def acquire(folder: str | Path) -> Path:
    """Lock `folder` for this process (created if needed); RunFolderBusy when a live run holds it."""
    folder = Path(folder).expanduser().resolve()
    if folder in _held:
        return folder
    writable_folder(folder, "hydra.run.dir")  # names the key; `paths.log_dir` moves every run's folder
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunFolderBusy(
            f"the run folder {folder} is in use by {holder}. Two runs in one folder would mix their checkpoints "
            "and logs: wait for it to end (then resume there with `ckpt_path=...`), or leave `hydra.run.dir` "
            "unset (a new timestamped folder) or set another one"
        ) from None
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "command": " ".join(sys.argv),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    _held[folder] = fd
    return folder


def release(folder: str | Path) -> None:
    fd = _held.pop(Path(folder).expanduser().resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the last descriptor drops the flock


@contextlib.contextmanager
def hold_run_folder(folder: str | Path) -> Iterator[None]:
    """The folder locked for the block (a no-op on ranks other than 0, and when this process already holds it)."""
    if not is_rank_zero():
        yield
        return
    path = Path(folder).expanduser().resolve()
    mine = path not in _held
    acquire(path)
    try:
        yield
    finally:
        if mine:
            release(path)


class RunFolderLock(Callback):
    """Hydra callback (conf/hydra/default.yaml): lock `hydra.run.dir` before Hydra writes into it, for the whole
    process. The folder is resolved once here and written back, so `${now:...}` cannot tick between the lock and
    Hydra's own use of it."""

    def __init__(self) -> None:
        self.folder: Path | None = None

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        if not is_rank_zero():
            return
        # Hydra sets its HydraConfig only after this hook; `hydra.run.dir` may use `${hydra:...}` (infer's run
        # name is its stage choices), which cannot resolve without it.
        HydraConfig.instance().set_config(config)
        folder = str(OmegaConf.select(config, "hydra.run.dir"))
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.run.dir = folder
        try:
            self.folder = acquire(folder)
        except UserError as e:  # Hydra turns a callback's exception into a warning and runs the job anyway
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(1) from None

    def on_run_end(self, config: DictConfig, **kwargs) -> None:
        if self.folder is not None:
            release(self.folder)
