"""Painted canvas layers -> class ids, and back: what the browser page (`underpainting.app`) paints with.

A canvas is a stack of RGBA layers (the page's brush strokes) over an optional backdrop that is only traced over,
never decoded. A pixel is painted where some layer's alpha reaches `alpha_threshold` (the top-most such layer
wins), so a brush that anti-aliases its rim decodes to the stroke it covers by at least half; a painted pixel takes
the class of the nearest palette colour, and a colour farther than `tolerance` from every class is an error naming
its colours, as in `underpainting.data.sketch.decode_sketch`. Unpainted pixels take the class of the nearest stroke
(`unpainted="nearest"`, a quick sketch becomes a whole scene) or one named class.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from underpainting.data.images import DataError, current_pixel_limit, load_rgb
from underpainting.data.labels import LabelSet
from underpainting.data.sketch import palette_text


def _rgba(layer: Image.Image | np.ndarray, source: str) -> np.ndarray:
    if isinstance(layer, Image.Image):
        layer = np.asarray(layer.convert("RGBA"))
    a = np.asarray(layer)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
        raise DataError(f"{source}: a canvas layer must be an RGBA uint8 image, got {a.dtype} {a.shape}")
    if a.shape[2] == 3:  # an opaque layer: every pixel painted
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return a


def fill_unpainted(ids: torch.Tensor, painted: torch.Tensor) -> torch.Tensor:
    """Give every unpainted pixel the majority class of its painted 8-neighbours, growing outwards from the
    strokes until none is left: the class of the nearest stroke (ties between strokes go to the majority)."""
    ids, known = ids.clone(), painted.clone()
    classes = ids[known].unique()
    local = torch.zeros(int(classes.max()) + 1, dtype=torch.long)
    local[classes] = torch.arange(len(classes))
    h, w = ids.shape
    for _ in range(h + w):
        if bool(known.all()):
            break
        votes = F.one_hot(local[ids.clamp(0, len(local) - 1)], len(classes)).permute(2, 0, 1).float()
        votes = F.avg_pool2d((votes * known)[None], 3, stride=1, padding=1)[0]
        grow = ~known & (votes.sum(0) > 0)
        ids[grow] = classes[votes.argmax(0)[grow]]
        known |= grow
    return ids


def decode_canvas(
    layers: Sequence[Image.Image | np.ndarray],
    labels: LabelSet,
    unpainted: str = "nearest",
    alpha_threshold: int = 128,
    tolerance: float = 40.0,
    source: str = "the canvas",
) -> torch.Tensor:
    """RGBA layers (bottom first, all the same size) -> (H, W) int64 class ids (see the module docstring).

    `unpainted`: "nearest" (the nearest stroke's class) or a class name of `labels` (e.g. "sky")."""
    if not layers:
        raise DataError(f"{source} is empty: paint with the class brushes, or upload a sketch or a label map")
    stack = [_rgba(layer, source) for layer in layers]
    if len({a.shape[:2] for a in stack}) > 1:
        sizes = ", ".join(f"{a.shape[1]}x{a.shape[0]}" for a in stack)
        raise DataError(f"{source}: its layers differ in size ({sizes}); repaint on one canvas")
    rgb = np.zeros(stack[0].shape[:2] + (3,), np.uint8)
    painted = np.zeros(stack[0].shape[:2], bool)
    for a in stack:  # later layers are drawn over earlier ones
        on = a[..., 3] >= alpha_threshold
        rgb[on], painted = a[..., :3][on], painted | on
    painted_t = torch.from_numpy(painted)
    if not painted.any():
        raise DataError(f"{source} is empty: paint with the class brushes, or upload a sketch or a label map")
    px = torch.from_numpy(rgb).reshape(-1, 3).float()
    best, ids = torch.cdist(px, labels.palette.float()).min(1)
    best, ids = best.view(painted.shape), ids.view(painted.shape)
    far = painted_t & (best > tolerance)
    if far.any():
        colours, counts = np.unique(rgb[far.numpy()], axis=0, return_counts=True)
        order = np.argsort(-counts)[:5]
        found = ", ".join(
            f"rgb({c[0]},{c[1]},{c[2]}) x {n} px" for c, n in zip(colours[order], counts[order], strict=True)
        )
        raise DataError(
            f"{source}: {int(far.sum())} painted pixels are farther than {tolerance:g} (RGB) from every class "
            f"colour: {found}. Paint with the class brushes only. Palette: {palette_text(labels)}"
        )
    if unpainted == "nearest":
        return fill_unpainted(ids, painted_t)
    try:
        fill = labels.id(unpainted)
    except KeyError as err:
        raise DataError(f"`unpainted`={unpainted!r}: {err.args[0]} (or 'nearest')") from None
    return torch.where(painted_t, ids, torch.full_like(ids, fill))


def sketch_layer(ids: torch.Tensor, labels: LabelSet) -> Image.Image:
    """(H, W) class ids -> an opaque RGBA layer in the palette: an uploaded sketch, ready to paint over."""
    rgb = labels.palette[ids.long().clamp(0, len(labels) - 1)].numpy()
    return Image.fromarray(np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], 2), "RGBA")


def read_sketch_upload(path: str | Path, labels: LabelSet, **decode_kw) -> torch.Tensor:
    """An uploaded file -> (H, W) ids: an 8-bit PNG of class ids, or a sketch in the palette (decoded as infer.py
    decodes it). Non-image files and unknown colours raise DataError naming the file."""
    from underpainting.data.nst import load_label_map

    load_rgb(path)  # a clear "cannot be read as an image" for anything that is not one
    return load_label_map(path, labels, **decode_kw)[0]


def resize_ids(ids: torch.Tensor, long_side: int) -> torch.Tensor:
    """Nearest-neighbour resize of (H, W) ids so the long side is `long_side` px (the aspect ratio kept)."""
    h, w = ids.shape
    if long_side <= 0 or max(h, w) == long_side:
        return ids
    s = long_side / max(h, w)
    size = (max(1, round(h * s)), max(1, round(w * s)))
    current_pixel_limit().check(f"the label map resized to a long side of {long_side} px", size[::-1])
    return F.interpolate(ids[None, None].float(), size=size, mode="nearest")[0, 0].long()


def canvas_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(W, H) with the long side `long_side` and the aspect ratio of `width` x `height`."""
    s = long_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def load_backdrop(path: str | Path, long_side: int, xray: bool = False) -> Image.Image:
    """A picture to trace over, resized (aspect kept) to the long side `long_side`: the canvas takes its size, so
    a label map painted over it lines up with it (e.g. a style painting's `style.labels`). `xray`: a hidden X-ray
    (`python -m underpainting.xray separate`), contrast-normalised and lightened as `xray trace` does."""
    if xray:
        from underpainting.data.xray.io import backdrop, load_xray

        x = load_xray(path)
        w, h = canvas_size(x.shape[-1], x.shape[-2], long_side)
        grey = (backdrop(x, (h, w))[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        return Image.fromarray(grey, "L").convert("RGB")
    image = load_rgb(path)
    return image.resize(canvas_size(*image.size, long_side), Image.Resampling.LANCZOS)


def resize_layers(layers: Sequence[Image.Image | np.ndarray], size: tuple[int, int]) -> list[Image.Image]:
    """Stroke layers moved onto a canvas of `size` = (W, H), nearest-neighbour: strokes keep exact colours."""
    out = []
    for layer in layers:
        img = Image.fromarray(_rgba(layer, "a canvas layer"), "RGBA")
        out.append(img if img.size == size else img.resize(size, Image.Resampling.NEAREST))
    return out


def label_map_image(ids: torch.Tensor) -> Image.Image:
    """(H, W) ids -> an 8-bit greyscale PNG of class ids (what `style.labels` and `load_label_map` read)."""
    return Image.fromarray(ids.to(torch.uint8).numpy(), "L")
