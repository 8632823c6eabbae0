"""Checkpoints that are never torn and are loaded without unpickling arbitrary objects."""

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

from underpainting.errors import CheckpointWriteError

log = logging.getLogger(__name__)
TEMP_NAME = re.compile(r"^\..+\.(\d+)\.tmp$")  # .<name>.<pid>.tmp, see AtomicCheckpointIO


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


def _write_error(e: BaseException, path: Path) -> CheckpointWriteError:
    free = shutil.disk_usage(path.parent).free / 2**20 if path.parent.is_dir() else float("nan")
    fix = (
        "The previous checkpoint is intact. Free some space, or write checkpoints to a larger disk "
        "(callbacks.model_checkpoint.dirpath=... or paths.log_dir=...), then resume from the previous checkpoint "
        "with ckpt_path=..."
    )
    if _no_space(e):
        return CheckpointWriteError(
            f"No space left on device writing {path} ({free:.0f} MiB free there). {fix}"
        )
    reason = e.strerror if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {e}"
    return CheckpointWriteError(f"cannot write the checkpoint {path}: {reason}. {fix}")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes to a temporary file in the same folder, fsyncs, then renames over the target: a run killed while
    saving leaves the previous checkpoint intact (and a `.<name>.<pid>.tmp` file that the next start removes).
    Loads with `weights_only=True` (tensors and plain containers)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _write_error(e, path) from None
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except (
            OSError,
            RuntimeError,
        ) as e:  # torch reports a failed write as RuntimeError (inline_container.cc)
            raise _write_error(e, path) from None
        finally:
            with contextlib.suppress(OSError):  # on a read-only disk this fails too: report the write, above
                tmp.unlink(missing_ok=True)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)  # make the rename itself durable
        finally:
            os.close(fd)
        logging.getLogger("underpainting.run").info(
            "checkpoint written: %s (step %s)", path, checkpoint.get("global_step")
        )

    def load_checkpoint(
        self, path, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
