"""Where a command writes: checked before the work, so an unwritable destination (a read-only disk, a path through
a file, no permission) is one line naming it and its option instead of an OSError after minutes of work."""

from __future__ import annotations

import tempfile
from pathlib import Path

from underpainting.errors import UserError


class DestinationError(UserError):
    """A folder the command was told to write into cannot be created or written."""


def writable_folder(path: str | Path, key: str) -> Path:
    """`path` created if missing and proven writable (a probe file written and removed); DestinationError else."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise DestinationError(
            f"`{key}` {path}: cannot write there ({e.strerror or e}); choose a folder this user can write to"
        ) from None
    return path
