"""Bad input files of every kind, made small and fast for tests/test_bad_input.py: each maker writes into a folder
and returns the path. Huge means huge in pixels, small on disk (a 12000x12000 palette PNG is 140 KB)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

SKY, GRASS = (156, 238, 221), (123, 200, 0)  # conf/labels/landscape.yaml


def sketch(path: Path, size: tuple[int, int] = (32, 32)) -> Path:
    """A valid sketch in the palette: sky above grass."""
    w, h = size
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2], a[h // 2 :] = SKY, GRASS
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a, "RGB").save(path)
    return path


def photo(path: Path, size: tuple[int, int] = (40, 32), seed: int = 0) -> Path:
    """A valid colour picture with texture (not flat)."""
    rng = np.random.default_rng(seed)
    w, h = size
    a = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a, "RGB").save(path, format="PNG")  # whatever the name says
    return path


def grey(path: Path, size: tuple[int, int] = (64, 64), value: int | None = None, seed: int = 0) -> Path:
    """An 8-bit greyscale image: textured, or constant `value` (a blank X-ray)."""
    w, h = size
    a = (
        np.full((h, w), value, np.uint8)
        if value is not None
        else np.random.default_rng(seed).integers(0, 256, (h, w))
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a.astype(np.uint8), "L").save(path)
    return path


def grey16(path: Path, size: tuple[int, int] = (32, 32)) -> Path:
    """A 16-bit greyscale PNG of class ids (sky over grass): a valid label map."""
    w, h = size
    a = np.full((h, w), 1, np.uint16)
    a[h // 2 :] = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def float_tiff(path: Path, bad: float = float("nan"), size: tuple[int, int] = (64, 64)) -> Path:
    """A float X-ray TIFF whose corner holds `bad` (NaN or inf)."""
    w, h = size
    a = np.random.default_rng(0).random((h, w)).astype(np.float32)
    a[:4, :4] = bad
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a, "F").save(path)
    return path


@cache
def _bomb(side: int) -> bytes:
    img = Image.new("P", (side, side), 0)
    img.putpalette([*SKY] * 256)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"underpainting-bomb-{side}-{os.getpid()}.png"
    img.save(path, optimize=True)
    data = path.read_bytes()
    path.unlink()
    return data


def bomb(path: Path, side: int = 12000) -> Path:
    """A palette PNG of side x side px that is tiny on disk (the app-killing upload of issue 22)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_bomb(side))
    return path


def truncated(path: Path) -> Path:
    """A PNG cut in the middle of its pixel data."""
    photo(path, (64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def empty(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def text(path: Path, content: str = "this is not an image\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def latin1(path: Path, content: str = "file,subject\ntrainA_0.png,paysage d'été\n") -> Path:
    """A text file in Latin-1 (not UTF-8): é is one byte 0xE9."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("latin-1"))
    return path


def dangling(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(path.with_name("gone" + path.suffix))
    return path


def self_link(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(path.name)
    return path


def under_a_file(folder: Path, name: str = "out") -> Path:
    """A destination that cannot be created: its parent is a regular file (the same error a read-only disk gives
    to root, who ignores permissions)."""
    blocker = folder / "a_file"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder\n")
    return blocker / name


def dataset(root: Path, **bad: Path) -> Path:
    """A tiny vangogh2photo layout (two images per split); `bad={"trainA": path}` adds that file to a split."""
    for split in ("trainA", "trainB", "testA", "testB"):
        for i in range(2):
            photo(root / split / f"{split}_{i}.png", (32, 32), seed=i)
    for split, path in bad.items():
        target = root / split / path.name
        if path.is_symlink():
            target.symlink_to(os.readlink(path))
        else:
            shutil.copyfile(path, target)
    return root


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another live process holding `folder`'s run lock (as a second `train.py` would), until it is killed."""
    folder.mkdir(parents=True, exist_ok=True)
    code = textwrap.dedent(
        f"""
        import fcntl, json, os, sys, time
        fd = os.open({str(folder / ".run.lock")!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({{"pid": os.getpid(), "host": "here", "started": time.time(),
                                  "command": "python train.py seed=7"}}).encode())
        print("locked", flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc
