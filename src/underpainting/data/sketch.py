"""Sketch decoding: an RGB image painted in the label set's palette (any size) -> class ids.

Painted sketches are rarely exact: brushes anti-alias region edges (blends of two colours, which can land near a third
class's colour), and JPEG adds noise. Decoding therefore:

1. gives each pixel the class of the nearest palette colour, if within `tolerance` (Euclidean RGB distance);
2. treats as *boundary* pixels those farther than `tolerance` from every colour, and those in an inexact colour
   (farther than `exact_tolerance` from their class colour) in a structure at most 2 px thin (gone after a 3x3
   opening) whose colour a blend of two other nearby classes explains better than its own class colour does: an
   anti-aliased seam or JPEG ringing, whose mixed colour can land near a third class;
3. keeps a pixel's class only where that class is really painted nearby - exactly, or as a solid area (it survives
   a 3x3 erosion) in a colour clearly nearer that class than any other, within 2 x `edge_width` px: JPEG ringing round a flower blob lands near `tree`, a class the sketch
   may not contain at all, and is then re-decided like the other boundary pixels;
4. gives boundary pixels the majority class of their decided neighbours, growing inwards until none is left.

A single-channel image (8/16-bit greyscale, like the project's `labels/*.png`) whose values are all below the
number of classes, or a palette image whose indices are (and whose colours are not the label palette), is read as
class ids directly. A sketch that decodes to >= 95% one class gets a warning: it was probably not painted in the
palette.

A far-from-palette area thicker than a seam (it survives an erosion by `edge_width` px) is an error naming the file,
its colours with pixel counts and the palette: a wrong colour is never silently guessed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from underpainting.data.images import DataError, open_image, to_rgb
from underpainting.data.labels import LabelSet

log = logging.getLogger(__name__)
PAD = -3  # fill value for neighbours outside the image
ONE_CLASS_WARNING = 0.95  # share of one class above which a sketch is suspicious
SINGLE_CHANNEL = ("L", "I", "I;16", "I;16B", "I;16L")


def _shifted(t: torch.Tensor, fill) -> list[torch.Tensor]:
    """The 8 neighbours of every pixel: t shifted by (dy, dx) in {-1, 0, 1}^2 minus (0, 0), padded with `fill`."""
    h, w = t.shape
    p = torch.full((h + 2, w + 2), fill, dtype=t.dtype)
    p[1:-1, 1:-1] = t
    return [p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def _erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary erosion with a (2r+1)^2 square; pixels outside the image count as set (edges are not eroded)."""
    k = 2 * radius + 1
    inv = (~mask).float()[None, None]
    return ~(F.max_pool2d(inv, k, stride=1, padding=radius)[0, 0] > 0)


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    k = 2 * radius + 1
    return F.max_pool2d(mask.float()[None, None], k, stride=1, padding=radius)[0, 0] > 0


def palette_text(labels: LabelSet) -> str:
    return ", ".join(f"{c.name}=({c.rgb[0]},{c.rgb[1]},{c.rgb[2]})" for c in labels.classes)


def _describe_colours(rgb: torch.Tensor, mask: torch.Tensor, limit: int = 5) -> str:
    """The main colours under `mask`, grouped in 32-level bins: 'rgb(250,3,240) x 1234 px, ...'."""
    px = rgb[:, mask].T.long()  # (N, 3)
    bins = (px[:, 0] // 32) * 64 + (px[:, 1] // 32) * 8 + px[:, 2] // 32
    uniq, inverse, counts = torch.unique(bins, return_inverse=True, return_counts=True)
    order = counts.argsort(descending=True)[:limit]
    parts = []
    for i in order.tolist():
        mean = px[inverse == i].float().mean(0).round().long().tolist()
        parts.append(f"rgb({mean[0]},{mean[1]},{mean[2]}) x {int(counts[i])} px")
    more = "" if len(uniq) <= limit else f", and {len(uniq) - limit} more colour groups"
    return ", ".join(parts) + more


def _explained_by_blend(
    rgb: torch.Tensor,
    ids: torch.Tensor,
    far: torch.Tensor,
    cand: torch.Tensor,
    palette: torch.Tensor,
    radius: int,
) -> torch.Tensor:
    """For each candidate pixel: is its colour closer to the segment between two other classes present within
    `radius` px than to its own class colour?"""
    classes = ids[~far].unique()  # only the classes in this sketch: few pairs
    local = torch.full(
        (palette.shape[0] + 1,), len(classes), dtype=torch.long
    )  # index -1 (far, outside) -> K
    local[classes] = torch.arange(len(classes))
    lab = torch.where(far, torch.full_like(ids, -1), ids)
    padded = F.pad(lab[None, None].float(), (radius,) * 4, value=-1)[0, 0].long()
    ys, xs = cand.nonzero(as_tuple=True)
    d = torch.arange(-radius, radius + 1)
    window = padded[
        (ys + radius)[:, None, None] + d[None, :, None], (xs + radius)[:, None, None] + d[None, None, :]
    ]
    present = F.one_hot(local[window.flatten(1)], len(classes) + 1).any(1)[
        :, :-1
    ]  # (N, K) classes within radius
    own = local[ids[cand]]
    present[torch.arange(own.numel()), own] = False
    x = rgb[:, cand].T.float()  # (N, 3)
    a_idx, b_idx = torch.triu_indices(len(classes), len(classes), offset=1)
    a, b = palette[classes[a_idx]], palette[classes[b_idx]]  # (P, 3)
    ab = b - a
    t = (((x[:, None] - a[None]) * ab[None]).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-6)[None]).clamp(0, 1)
    seg_dist = (x[:, None] - (a[None] + t[..., None] * ab[None])).norm(dim=-1)  # (N, P)
    both = present[:, a_idx] & present[:, b_idx]
    best_blend = torch.where(both, seg_dist, torch.full_like(seg_dist, float("inf"))).min(1).values
    return best_blend < (x - palette[classes[own]]).norm(dim=-1)


def _unsupported(
    ids: torch.Tensor, far: torch.Tensor, exact: torch.Tensor, clear: torch.Tensor, radius: int
) -> torch.Tensor:
    """Pixels whose class has no support within `radius` px - no exact pixel, no solid (3x3-eroded) area in a
    clearly-that-class colour: a colour only a seam or JPEG ringing produced."""
    out = torch.zeros_like(far)
    for k in ids[~far].unique().tolist():
        mask = (ids == k) & ~far
        support = mask & (exact | _erode(mask, 1) & clear)
        out |= mask & ~_dilate(support, radius)
    return out


def open_sketch(path: str | Path) -> Image.Image:
    """The file as stored (mode kept, EXIF orientation applied); DataError naming it when unreadable or over the
    pixel limit (`underpainting.data.images.open_image`)."""
    with open_image(path) as img:
        try:
            img.load()
            return ImageOps.exif_transpose(img)
        except (OSError, ValueError, SyntaxError) as e:
            raise DataError(f"{path}: cannot be read as an image ({e}); replace or remove the file") from e


def class_ids_in(image: Image.Image, labels: LabelSet, tolerance: float) -> torch.Tensor | None:
    """The ids of a single-channel or palette image that stores class ids; None for a colour sketch."""
    if image.mode in SINGLE_CHANNEL:
        values = np.asarray(image).astype(np.int64)
        return torch.from_numpy(values) if values.max(initial=0) < len(labels) else None
    if image.mode == "P":
        index = np.asarray(image).astype(np.int64)
        used = np.unique(index)
        colours = torch.tensor(np.asarray(image.getpalette() or [], dtype=np.float32).reshape(-1, 3)[used])
        in_palette = len(colours) and bool(
            (torch.cdist(colours, labels.palette.float()).min(1).values <= tolerance).all()
        )
        if not in_palette and used.max(initial=0) < len(labels):  # indices are ids, colours only for display
            return torch.from_numpy(index)
    return None


def _warn_if_one_class(ids: torch.Tensor, labels: LabelSet, source: str) -> torch.Tensor:
    counts = torch.bincount(ids.flatten(), minlength=len(labels))
    top = int(counts.argmax())
    share = float(counts[top]) / max(ids.numel(), 1)
    if share >= ONE_CLASS_WARNING:
        log.warning(
            "%s decodes to %.0f%% %r: a sketch is usually several regions. Is it painted in the palette of the "
            "label set (%s), or an 8-bit PNG of class ids 0..%d?",
            source,
            100 * share,
            labels.names[top],
            palette_text(labels),
            len(labels) - 1,
        )
    return ids


def decode_sketch(
    image: Image.Image | np.ndarray | torch.Tensor | str | Path,
    labels: LabelSet,
    tolerance: float = 40.0,
    exact_tolerance: float = 2.0,
    edge_width: int = 2,
    source: str | None = None,
) -> torch.Tensor:
    """Decode a palette-painted sketch into (H, W) int64 class ids.

    Args:
        image: a path, a PIL image, an (H, W, 3) uint8 array, or a (3, H, W) uint8 tensor.
        tolerance: largest RGB distance at which a pixel still counts as a palette colour (JPEG noise, soft brushes).
        exact_tolerance: pixels closer than this to a palette colour are kept even in 1-2 px thin strokes.
        edge_width: far-from-palette areas that vanish after an erosion of this radius are seams, not regions.
        source: the name used in error messages (defaults to the path).
    """
    if isinstance(image, str | Path):
        source = source or str(image)
        image = open_sketch(image)
    source = source or "<sketch>"
    single_channel = False
    if isinstance(image, Image.Image):
        ids = class_ids_in(image, labels, tolerance)
        if ids is not None:
            return _warn_if_one_class(ids, labels, source)
        single_channel = image.mode in SINGLE_CHANNEL
        image = np.asarray(to_rgb(image), dtype=np.uint8)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise DataError(f"{source}: a sketch must be an RGB image, got an array of shape {image.shape}")
        rgb = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)
    else:
        rgb = image
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise DataError(f"{source}: a sketch must be (3, H, W) RGB, got shape {tuple(rgb.shape)}")
    rgb = rgb.to(torch.int64)
    h, w = rgb.shape[1:]

    palette = labels.palette.to(torch.float32)  # (C, 3)
    dist = torch.cdist(rgb.permute(1, 2, 0).reshape(-1, 3).float(), palette).view(h, w, -1)
    best, ids = dist.min(dim=-1)

    far = best > tolerance
    if far.any():
        core = _erode(far, edge_width) & far
        if core.any():
            region = far & _dilate(core, edge_width)
            ids_hint = (
                f" (A single-channel image is read as class ids only when all its values are 0..{len(labels) - 1}.)"
                if single_channel
                else ""
            )
            raise DataError(
                f"{source}: {int(region.sum())} pixels in regions whose colour is farther than {tolerance:g} (RGB) "
                f"from every class colour: {_describe_colours(rgb, region)}. Repaint them with a palette colour "
                f"(or raise the tolerance). Palette: {palette_text(labels)}{ids_hint}"
            )

    # Seams and ringing: pixels of a thin (<= 2 px) structure, in an inexact colour, that a blend of two *other*
    # classes found within `edge_width` px explains better than their own colour does (a sky|other seam that lands
    # on `cloud`, JPEG ringing between sky and cloud that lands on `field`). A small flower in grass is not a blend
    # of grass with anything, so it stays.
    uncertain = far.clone()
    # Per-pixel neighbourhood tests on the id map itself (no per-class passes: fast on large sketches).
    lab = torch.where(far, torch.full_like(ids, -1), ids)
    near = _shifted(lab, PAD)
    same = [(n == lab) | (n == PAD) for n in near]  # outside the image counts as the same class
    interior = ~far & torch.stack(same).all(0)
    lone = ~far & ~torch.stack([n == lab for n in near]).any(
        0
    )  # a single pixel of its class: noise at any size
    # In the 3x3 opening of its class iff an interior pixel of the same class lies within 1 px.
    in_opening = interior | torch.stack(
        [i & (n == lab) for i, n in zip(_shifted(interior, False), near, strict=True)]
    ).any(0)
    thin = ~far & ~in_opening
    inexact = best > exact_tolerance
    uncertain |= lone & inexact
    cand = thin & inexact & ~uncertain
    if cand.any():
        uncertain |= cand.clone().masked_scatter_(
            cand, _explained_by_blend(rgb, ids, far, cand, palette, edge_width)
        )

    # Support: exact pixels, and solid areas in a colour at most half as far from their class as from any other
    # (JPEG moves colours between close classes, e.g. bush_plant and earth_ground, 18 apart).
    nearest_two = dist.topk(min(2, dist.shape[-1]), dim=-1, largest=False).values
    clear = nearest_two[..., 0] <= 0.5 * nearest_two[..., -1]
    uncertain |= _unsupported(ids, far, best <= exact_tolerance, clear, 2 * edge_width)

    known = ~uncertain
    if not known.any():
        raise DataError(
            f"{source}: no region of the sketch is painted in a palette colour; Palette: {palette_text(labels)}"
        )
    ids = ids.clone()
    classes = ids.unique()  # vote over the classes present only
    local = torch.full((len(labels),), 0, dtype=torch.long)
    local[classes] = torch.arange(len(classes))
    for _ in range(h + w):
        if not uncertain.any():
            break
        votes = F.one_hot(local[ids], len(classes)).permute(2, 0, 1).float() * known.float()
        votes = F.avg_pool2d(votes[None], 3, stride=1, padding=1)[0]  # (K, H, W) share of known neighbours
        fill = uncertain & (votes.sum(0) > 0)
        ids[fill] = classes[votes.argmax(0)[fill]]
        known |= fill
        uncertain &= ~fill
    return _warn_if_one_class(ids, labels, source)


def encode_sketch(ids: torch.Tensor, labels: LabelSet) -> Image.Image:
    """Class ids (H, W) -> the sketch painted in the palette (the inverse of `decode_sketch` on clean input)."""
    rgb = labels.palette[ids.long().clamp(0, len(labels) - 1)]  # (H, W, 3) uint8
    return Image.fromarray(rgb.numpy(), "RGB")
