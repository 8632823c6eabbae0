"""Reading images safely: every datamodule checks its files at setup so a bad file stops the run before training,
with the list of offenders, instead of crashing hours into an epoch.

Pixel limits: an image's size is read from its header before it is decoded, and one over the limit in force is
refused in one line naming the file, its size and the setting that raises the limit. A 140 KB palette PNG can hold
12000x12000 px; decoded and painted it took a 24 GiB machine down. Each entry point sets its limit for the work it
does (`with pixel_limit(cfg.max_pixels, "max_pixels"): ...`); every reader here obeys the one in force.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from underpainting.errors import DataError

log = logging.getLogger(__name__)
__all__ = [
    "DataError",
    "ImageTooLarge",
    "list_images",
    "load_rgb",
    "open_image",
    "pixel_limit",
    "validate_images",
    "pil_to_tensor",
    "tensor_to_pil",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
# Without an entry point's own limit: 64 MP (8000x8000), what a 24 GiB machine decodes and resizes comfortably;
# the painting entry points set lower ones (conf/infer.yaml `max_pixels`, conf/app `max_pixels`).
DEFAULT_MAX_PIXELS = 64_000_000


class ImageTooLarge(DataError):
    """An image whose header says it has more pixels than the limit in force."""


@dataclass(frozen=True)
class PixelLimit:
    max_pixels: int
    key: str | None  # the setting that raises it, named in the refusal; None: the program-wide default

    def advice(self) -> str:
        if self.key is None:
            return f"{self.max_pixels / 1e6:.1f} MP, the limit on any image read here; downscale the image"
        return (
            f"{self.max_pixels / 1e6:.1f} MP (`{self.key}={self.max_pixels}`); downscale the image, or raise "
            f"`{self.key}` if the machine has the memory (docs/performance.md: memory per megapixel)"
        )

    def check(self, path: str | Path, size: tuple[int, int]) -> None:
        w, h = size
        if w * h > self.max_pixels:
            raise ImageTooLarge(
                f"{path}: {w}x{h} px ({w * h / 1e6:.1f} MP) is over the limit of {self.advice()}"
            )


# PIL warns (and goes on decoding) above its own limit; the pixel limit here refuses or allows, so the warning only
# adds a line about a "DOS attack" before our one-line answer.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
DEFAULT_LIMIT = PixelLimit(DEFAULT_MAX_PIXELS, None)  # frozen: safe as a shared default
_LIMIT: ContextVar[PixelLimit] = ContextVar("pixel_limit", default=DEFAULT_LIMIT)


@contextlib.contextmanager
def pixel_limit(max_pixels: int, key: str) -> Iterator[PixelLimit]:
    """Images read inside this block may have at most `max_pixels` pixels; `key` is the setting named when one has
    more. A context variable: each thread (the app's jobs) and each entry point has its own. Inside a block that set
    a smaller limit, the smaller one stays (the app's jobs are infer runs within the app's limit)."""
    if int(max_pixels) < 1:
        raise DataError(
            f"`{key}`={max_pixels} must be a positive number of pixels, e.g. {DEFAULT_MAX_PIXELS}"
        )
    outer = _LIMIT.get()
    limit = PixelLimit(int(max_pixels), key)
    if outer is not DEFAULT_LIMIT and outer.max_pixels <= limit.max_pixels:
        limit = outer
    # PIL refuses images over 2 * MAX_IMAGE_PIXELS on its own, whatever ours says: keep it above ours.
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS * 2 < limit.max_pixels:
        Image.MAX_IMAGE_PIXELS = limit.max_pixels
    token = _LIMIT.set(limit)
    try:
        yield limit
    finally:
        _LIMIT.reset(token)


def guard_decoding(max_pixels: int) -> None:
    """PIL's own decompression-bomb check at `max_pixels`, for the decoding that libraries do before our readers
    see a file (Gradio opens the images a page receives). For a process that serves one limit (the app)."""
    Image.MAX_IMAGE_PIXELS = max(1, int(max_pixels) // 2)  # PIL refuses above twice this, warns above it
    warnings.filterwarnings(
        "ignore", category=Image.DecompressionBombWarning
    )  # ours refuses; no half-way noise


def current_pixel_limit() -> PixelLimit:
    return _LIMIT.get()


def link_problem(path: Path) -> str | None:
    """Why a symlink cannot be read (dangling, or a loop), None for a readable link or a plain file."""
    if not path.is_symlink():
        return None
    try:
        path.resolve(strict=True)
    except FileNotFoundError:
        return f"a symlink to {os.readlink(path)}, which does not exist"
    except (RuntimeError, OSError):  # RuntimeError: pathlib's "Symlink loop" (Python < 3.13)
        return f"a symlink that leads back to itself ({os.readlink(path)})"
    return None


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header, for a file PIL's own bomb check refused to open. Runs PIL's format
    openers directly (what `Image.open` does before its check): no decoding, and no change to PIL's global limit,
    which other threads (the app's jobs, Gradio) rely on."""
    Image.init()
    with open(path, "rb") as fp:
        prefix = fp.read(16)
        for fmt in Image.ID:
            factory, accept = Image.OPEN[fmt]
            if accept is not None and not accept(prefix):
                continue
            fp.seek(0)
            try:
                return factory(fp, str(path)).size
            except Exception:  # this opener does not read it: try the next, as Image.open does
                continue
    return None


@contextlib.contextmanager
def open_image(path: str | Path) -> Iterator[Image.Image]:
    """`Image.open` with the size checked from the header against the pixel limit in force, before any decoding;
    DataError naming the file for anything that is not a readable image (missing, dangling link, wrong format)."""
    path = Path(path).expanduser()
    if (problem := link_problem(path)) is not None:
        raise DataError(f"{path} is {problem}; fix or remove the link")
    if not path.exists():
        raise DataError(f"image {path} does not exist; check the path")
    limit = current_pixel_limit()
    try:
        img = Image.open(path)
    except Image.DecompressionBombError as e:
        size = _header_size(path)
        if size is not None:
            limit.check(path, size)  # over ours too (the usual case): the one-line refusal with its size
        raise ImageTooLarge(f"{path}: {e} Over the limit of {limit.advice()}") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path}: cannot be read as an image ({e}); replace or remove the file") from e
    with img:
        limit.check(path, img.size)
        yield img


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files directly in `folder`; an empty or missing folder is an error, not an empty dataset.
    Symlinks are listed even when broken, so the reader reports them instead of the file silently missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and (p.is_file() or p.is_symlink())
    )
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
    the file when it is missing, cannot be read, or is over the pixel limit in force (from its header, before
    decoding)."""
    with open_image(path) as img:
        try:
            img.load()
            return to_rgb(img)
        except (OSError, ValueError, SyntaxError) as e:
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
    """Why `path` cannot be used (None if it can). Checks the size from the header against the pixel limit, then
    fully decodes the file, so truncated JPEGs are caught."""
    if (problem := link_problem(path)) is not None:
        return problem
    try:
        with open_image(path) as img:
            img.load()
            size = img.size
    except DataError as e:  # missing, over the pixel limit: said by open_image
        return str(e).removeprefix(f"{path}: ").removeprefix(f"{path} ")
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
