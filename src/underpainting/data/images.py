"""Reading images safely: every datamodule checks its files at setup so a bad file stops the run before training,
with the list of offenders, instead of crashing hours into an epoch."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from underpainting.errors import DataError

log = logging.getLogger(__name__)
__all__ = ["DataError", "list_images", "load_rgb", "validate_images", "pil_to_tensor", "tensor_to_pil"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files directly in `folder`; an empty or missing folder is an error, not an empty dataset."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"image folder {folder} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return files


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert grayscale, palette, RGBA, CMYK and 16-bit images to 8-bit RGB (alpha composited on white)."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if a.max() > 255 else 255.0
        img = Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").split()[-1])
        return background
    return img.convert("RGB")


def load_rgb(path: str | Path) -> Image.Image:
    """The project's one image loader: a file as 8-bit RGB (`pil_to_tensor` for a tensor), or a DataError that names
    the file when it is missing or cannot be read."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"image {path} does not exist; check the path")
    try:
        with Image.open(path) as img:
            img.load()
            return to_rgb(img)
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as e:
        raise DataError(f"{path}: cannot be read as an image ({e}); replace or remove the file") from e


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> float tensor (3, H, W) in [-1, 1], the range every generator here works in."""
    a = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
    return a.float() / 127.5 - 1.0


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """(3, H, W) tensor in [-1, 1] -> PIL RGB."""
    a = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(a.permute(1, 2, 0).numpy(), "RGB")


@dataclass
class BadFile:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def check_image(path: Path, min_size: int = 0) -> str | None:
    """Why `path` cannot be used (None if it can). Fully decodes the file, so truncated JPEGs are caught."""
    try:
        with Image.open(path) as img:
            img.load()
            size = img.size
    except Exception as e:  # PIL raises many types for broken files; all mean the same to the user
        return f"not a readable image ({type(e).__name__}: {e})"
    if min(size) < min_size:
        return f"{size[0]}x{size[1]} is smaller than the crop size {min_size}; use larger images or a smaller crop"
    return None


def validate_images(
    files: Sequence[Path], min_size: int = 0, on_bad_file: str = "error", what: str = "images"
) -> list[Path]:
    """Check every file once at setup. `on_bad_file`: 'error' stops with the full list, 'skip' drops and reports."""
    if on_bad_file not in ("error", "skip"):
        raise ValueError(f"on_bad_file must be 'error' or 'skip', got {on_bad_file!r}")
    bad = [BadFile(p, r) for p in files if (r := check_image(p, min_size)) is not None]
    if not bad:
        return list(files)
    if on_bad_file == "error":
        listing = "\n  ".join(str(b) for b in bad[:50]) + ("\n  ..." if len(bad) > 50 else "")
        raise DataError(
            f"{len(bad)} of {len(files)} {what} cannot be used:\n  {listing}\n"
            "Fix or remove them, or set data.on_bad_file=skip to train without them."
        )
    log.warning(
        "skipping %d of %d %s that cannot be used (on_bad_file=skip):\n  %s",
        len(bad),
        len(files),
        what,
        "\n  ".join(str(b) for b in bad),
    )
    good = [p for p in files if p not in {b.path for b in bad}]
    if not good:
        raise DataError(f"all {len(files)} {what} are unusable; first: {bad[0]}")
    return good


def filter_by_list(files: Iterable[Path], keep: Iterable[str]) -> list[Path]:
    """Keep files whose name or stem is in `keep` (a file list or a CSV column)."""
    keep = set(keep)
    return [p for p in files if p.name in keep or p.stem in keep]
