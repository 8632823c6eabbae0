"""Reading and writing X-radiographs: 8/16-bit greyscale PNG/TIFF (float TIFF too), mosaics of plates, and
contrast-normalised 8/16-bit PNGs for viewing. X-rays are float tensors (1, H, W) in [0, 1]."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from underpainting.data.images import load_rgb, open_image, pil_to_tensor
from underpainting.errors import DataError

log = logging.getLogger(__name__)


MIN_LEVELS = (
    4  # fewer distinct grey levels than this (between the 0.1 % and 99.9 % quantiles): nothing to separate
)


def load_xray(path: str | Path) -> torch.Tensor:
    """A greyscale radiograph -> (1, H, W) float in [0, 1], keeping 16-bit precision.

    8-bit ('L'), 16-bit ('I;16', PNG/TIFF), 32-bit integer and float TIFFs are read; a 3-channel file whose
    channels are equal (grey saved as RGB) is accepted; a colour image is refused (it is probably the photo).
    Refused before any work, each in one line naming the file: over the pixel limit (from the header), NaN or
    infinite values (float TIFFs), and a blank (constant or near-constant) image, whose "concealed design" would be
    the photo's negative.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist; give the path of the X-ray image (PNG or TIFF)")
    with open_image(path) as img:
        try:
            img.load()
        except (OSError, ValueError, SyntaxError) as e:
            raise DataError(f"{path}: cannot be read as an image ({e}); replace the file") from e
        a = _grey_array(img, path)
    check_radiograph(a, path)
    if img.mode == "F":
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) if hi > 1.0 or lo < 0.0 else a
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]


def _grey_array(img: Image.Image, path: Path) -> np.ndarray:
    """The pixel values as float64: in [0, 1] for integer modes, as stored for float ('F') TIFFs."""
    mode = img.mode
    if mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LA", "PA"):
        rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
        if np.abs(rgb - rgb[..., :1]).max() > 2:
            raise DataError(
                f"{path} is a colour image ({mode}, {img.width}x{img.height}), but an X-ray is greyscale: did "
                "you swap the X-ray and the visible photo? Give the radiograph as a greyscale PNG/TIFF "
                "(8 or 16 bit)."
            )
        return rgb[..., 0].astype(np.float64) / 255.0
    if mode == "1":
        return np.asarray(img, dtype=np.float64)
    if mode == "L":
        return np.asarray(img, dtype=np.float64) / 255.0
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(img).astype(np.float64)
        hi = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        if mode == "I" and a.max() > 65535:
            hi = float(a.max())
        return a / hi
    if mode == "F":
        return np.asarray(img, dtype=np.float64)
    raise DataError(f"{path}: image mode {mode!r} is not a greyscale radiograph; save it as 8/16-bit grey")


def check_radiograph(a: np.ndarray, path: str | Path) -> None:
    """Refuse values no radiograph holds: NaN/inf (a damaged or masked float export) and no contrast at all."""
    finite = np.isfinite(a)
    if not finite.all():
        nan, bad = int(np.isnan(a).sum()), int((~finite).sum())
        raise DataError(
            f"{path}: {bad} of {a.size} pixels are not finite ({nan} NaN, {bad - nan} infinite); fill them "
            "(e.g. with the median) and save the X-ray again"
        )
    flat = a.ravel()
    if flat.size > 1_000_000:  # quantiles of an even subsample: same answer, bounded time
        flat = flat[:: flat.size // 1_000_000]
    lo, hi = np.quantile(flat, [0.001, 0.999])
    middle = flat[(flat >= lo) & (flat <= hi)]
    scale = max(float(np.abs(flat).max()), 1e-12)
    if np.unique(middle).size < MIN_LEVELS or hi - lo <= 1e-4 * scale:
        raise DataError(
            f"{path}: the X-ray is blank (values {float(lo):.4g}..{float(hi):.4g}, {np.unique(middle).size} grey "
            "level(s)): a constant image holds no design to separate; check the file (unexposed or overexposed, "
            "or the wrong file)"
        )


def load_visible(path: str | Path) -> torch.Tensor:
    """The colour photograph of the visible painting -> (3, H, W) float in [0, 1]."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path} does not exist; give the path of the colour photo of the visible painting")
    return (pil_to_tensor(load_rgb(path)) + 1) / 2


def load_mosaic(
    plates: Sequence[str | Path], cols: int, overlap: int = 0, equalise: bool = True
) -> torch.Tensor:
    """Stitch radiographic plates given row by row (`cols` per row, all the same size) into one X-ray.

    Neighbouring plates share `overlap` px. With `equalise`, each plate's exposure offset is estimated from the
    median differences in the overlaps (least squares over the grid, mean offset kept) and removed, and overlaps are
    blended linearly, so no plate seam is left. Without overlap, use the seam removal of `xray.artefacts`.
    """
    if cols < 1 or len(plates) % cols:
        raise DataError(f"{len(plates)} plates do not fill rows of {cols} (`data.mosaic.cols`)")
    tiles = [load_xray(p) for p in plates]
    sizes = {tuple(t.shape[-2:]) for t in tiles}
    if len(sizes) > 1:
        raise DataError(f"mosaic plates differ in size {sorted(sizes)}; crop them to one size first")
    rows, (h, w) = len(tiles) // cols, tiles[0].shape[-2:]
    if overlap < 0 or overlap * 2 >= min(h, w):
        raise DataError(f"`data.mosaic.overlap`={overlap} px must be >= 0 and under half a plate ({h}x{w})")
    grid = [[tiles[r * cols + c] for c in range(cols)] for r in range(rows)]
    if equalise and overlap > 0:
        offsets = _plate_offsets(grid, overlap)
        grid = [[t - offsets[r, c] for c, t in enumerate(row)] for r, row in enumerate(grid)]
    step_y, step_x = h - overlap, w - overlap
    out = torch.zeros(1, step_y * (rows - 1) + h, step_x * (cols - 1) + w)
    weight = torch.zeros_like(out)
    ramp_y, ramp_x = _feather(h, overlap), _feather(w, overlap)
    wt = ramp_y[:, None] * ramp_x[None, :]
    for r in range(rows):
        for c in range(cols):
            ys, xs = r * step_y, c * step_x
            out[:, ys : ys + h, xs : xs + w] += grid[r][c] * wt
            weight[:, ys : ys + h, xs : xs + w] += wt
    return (out / weight.clamp_min(1e-8)).clamp(0, 1)


def _feather(n: int, overlap: int) -> torch.Tensor:
    ramp = torch.ones(n)
    if overlap > 0:
        t = (torch.arange(overlap).float() + 0.5) / overlap
        ramp[:overlap], ramp[-overlap:] = t, t.flip(0)
    return ramp


def _plate_offsets(grid: list[list[torch.Tensor]], overlap: int) -> torch.Tensor:
    rows, cols = len(grid), len(grid[0])
    eqs, rhs = [], []
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols:  # right neighbour: this plate's right strip = its left strip
                d = (grid[r][c][..., -overlap:] - grid[r][c + 1][..., :overlap]).median()
                eqs.append((r * cols + c, r * cols + c + 1))
                rhs.append(float(d))
            if r + 1 < rows:
                d = (grid[r][c][..., -overlap:, :] - grid[r + 1][c][..., :overlap, :]).median()
                eqs.append((r * cols + c, (r + 1) * cols + c))
                rhs.append(float(d))
    n = rows * cols
    a = torch.zeros(len(eqs) + 1, n, dtype=torch.float64)
    for i, (p, q) in enumerate(eqs):
        a[i, p], a[i, q] = 1.0, -1.0
    a[-1] = 1.0  # offsets sum to zero: the mosaic keeps its mean exposure
    b = torch.tensor([*rhs, 0.0], dtype=torch.float64)
    return torch.linalg.lstsq(a, b[:, None]).solution[:, 0].float().view(rows, cols)


def contrast_normalise(x: torch.Tensor, low: float = 0.005, high: float = 0.995) -> torch.Tensor:
    """Stretch the [low, high] quantiles to [0, 1] (clipped): how a separated part is shown."""
    flat = x.flatten().float()
    if flat.numel() > 1_000_000:  # quantile of a subsample: same picture, bounded memory
        flat = flat[torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(0))[:1_000_000]]
    lo, hi = torch.quantile(flat, torch.tensor([low, high]))
    return ((x - lo) / (hi - lo).clamp_min(1e-8)).clamp(0, 1)


def save_grey(x: torch.Tensor, path: str | Path, bits: int = 8) -> Path:
    """Write (1, H, W) in [0, 1] as an 8- or 16-bit greyscale PNG (or TIFF by extension)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = x.detach().float().cpu().clamp(0, 1)[0].numpy()
    if bits == 16:
        Image.fromarray((a * 65535 + 0.5).astype(np.uint16)).save(path)
    elif bits == 8:
        Image.fromarray((a * 255 + 0.5).astype(np.uint8), "L").save(path)
    else:
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    return path


def save_rgb(x: torch.Tensor, path: str | Path) -> Path:
    """Write (3, H, W) in [0, 1] as an 8-bit RGB image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = (x.detach().float().cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(a, "RGB").save(path)
    return path


BACKDROP_RANGE = (0.35, 1.0)  # the X-ray's black..white mapped here: mid-tones stay readable under strokes


def backdrop(xray: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, h, w) X-ray -> (1, H, W) lightened backdrop of `size` = (H, W) (aspect ratios must agree within 2 %)."""
    h, w = xray.shape[-2:]
    if abs(w / h - size[1] / size[0]) > 0.02 * (w / h):
        raise DataError(
            f"the X-ray is {w}x{h} px but the sketch {size[1]}x{size[0]}: different shapes. Make the sketch with "
            "the X-ray's aspect ratio (`trace` without --size/--like uses the X-ray's own size)"
        )
    x = F.interpolate(xray[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    lo, hi = BACKDROP_RANGE
    return lo + (hi - lo) * contrast_normalise(x)
