"""Files that are never torn and are read without unpickling arbitrary objects: the only `torch.load` and the one
atomic `torch.save` of the project."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from underpainting.errors import CheckpointWriteError, WeightsError

log = logging.getLogger(__name__)
TEMP_NAME = re.compile(r"^\..+\.(\d+)\.tmp$")  # .<name>.<pid>.tmp, see `write`
TRAIN_FIX = "fix the path, or train one with `python train.py ...`"
RESUME_FIX = (
    "The previous checkpoint is intact. Free some space, or write checkpoints to a larger disk "
    "(callbacks.model_checkpoint.dirpath=... or paths.log_dir=...), then resume from the previous checkpoint "
    "with ckpt_path=..."
)


def _torch_load(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """Tensors and plain containers only (`weights_only=True`): a pickled object that would run code is refused."""
    return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)


def read(
    path: str | Path, what: str = "checkpoint", fix: str = TRAIN_FIX, error: type[WeightsError] = WeightsError
) -> dict:
    """The dictionary saved in `path`, or one `error` paragraph naming the file, what it should be and `fix`:
    missing, unreadable (truncated, not a torch file, pickled code) or not a dictionary."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist; {fix}")
    try:
        payload = _torch_load(path)
    except Exception as e:  # unpickling errors, truncated files, HTML pages saved as .pth
        raise error(f"{path} is not a readable {what} ({type(e).__name__}: {e}); {fix}") from e
    if not isinstance(payload, dict):
        raise error(f"{path} holds a {type(payload).__name__}, not a {what}; {fix}")
    return payload


def peek(path: str | Path) -> object | None:
    """The file's top-level object, cheaply (memory-mapped where the format allows), or None if it is unreadable:
    for telling kinds of files apart and listing them, where a bad file is simply passed over."""
    for mmap in (True, False):  # files in PyTorch's pre-1.6 format cannot be memory-mapped
        try:
            return _torch_load(path, mmap=mmap)
        except Exception:
            continue
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files of saves whose process died mid-write (SIGKILL, power loss); returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in folder.iterdir():
        m = TEMP_NAME.match(p.name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            removed.append(p)
    if removed:
        log.info("removed %d temporary file(s) of interrupted checkpoint saves in %s", len(removed), folder)
    return removed


def _no_space(e: BaseException) -> bool:
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def _write_error(e: BaseException, path: Path, fix: str) -> CheckpointWriteError:
    free = shutil.disk_usage(path.parent).free / 2**20 if path.parent.is_dir() else float("nan")
    if _no_space(e):
        return CheckpointWriteError(
            f"No space left on device writing {path} ({free:.0f} MiB free there). {fix}"
        )
    reason = e.strerror if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {e}"
    return CheckpointWriteError(f"cannot write the checkpoint {path}: {reason}. {fix}")


def write(
    payload: object, path: str | Path, fix: str = "Free some space or write to another folder."
) -> Path:
    """`torch.save` to a temporary file in the same folder, fsync, then rename over `path`: a process killed while
    saving leaves the previous file intact (and a `.<name>.<pid>.tmp` that `remove_stale_temp_files` removes).
    A failed write is a CheckpointWriteError naming the file and ending with `fix`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _write_error(e, path, fix) from None
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch reports a failed write as RuntimeError (inline_container.cc)
        raise _write_error(e, path, fix) from None
    finally:
        with contextlib.suppress(OSError):  # on a read-only disk this fails too: report the write, above
            tmp.unlink(missing_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # make the rename itself durable
    finally:
        os.close(fd)
    return path


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO through `write` (never a torn checkpoint) and `weights_only=True` loading."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        write(checkpoint, path, RESUME_FIX)
        logging.getLogger("underpainting.run").info(
            "checkpoint written: %s (step %s)", path, checkpoint.get("global_step")
        )

    def load_checkpoint(
        self, path, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict:
        return _torch_load(path, map_location or "cpu")
