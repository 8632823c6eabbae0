"""Any-size inference for fully convolutional generators: pad to the network's stride and crop back, and overlapping
tiles with blended seams for images too large to run at once.

Two things make naive tiling visible: (1) outputs near a tile's border see padding instead of the neighbouring
pixels, and (2) instance norm normalises every tile with its own statistics, so neighbouring tiles get different
contrast and colour. (1) is handled by overlapping tiles and a raised-cosine blend that gives border pixels almost no
weight; (2) by `shared_instance_norm`: the per-layer statistics are measured once on the whole image (downscaled
when it is large) and every tile is normalised with them, as an untiled pass would be.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


def pad_to_multiple(x: torch.Tensor, multiple: int, min_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Pad (B, C, H, W) at the bottom/right to multiples of `multiple` (and at least `min_size`), reflecting the
    image where it is large enough (no hard edge for the network to reproduce), replicating otherwise."""
    h, w = x.shape[-2:]
    th, tw = math.ceil(h / multiple) * multiple, math.ceil(w / multiple) * multiple
    if min_size is not None:
        th, tw = max(th, min_size[0]), max(tw, min_size[1])
    ph, pw = th - h, tw - w
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    dtype = x.dtype
    y = x.float() if not x.is_floating_point() else x
    y = F.pad(y, (0, pw, 0, ph), mode=mode)
    return y.to(dtype)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x[..., : size[0], : size[1]]


def apply_padded(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Run `fn` on `x` padded to a multiple of the stride, and crop the result back to `x`'s size."""
    return crop_to(fn(pad_to_multiple(x, multiple)), x.shape[-2:])


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: stride `tile - overlap`, the last tile flush with the end (overlapping more)."""
    if length <= tile:
        return [0]
    step = tile - overlap
    if step <= 0:
        raise ValueError(f"tile overlap {overlap} must be smaller than the tile size {tile}")
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(n: int, overlap: int, left: bool, right: bool) -> torch.Tensor:
    """1D blend weights: raised cosine from ~0 to 1 over `overlap` px on the sides that meet another tile."""
    w = torch.ones(n)
    if overlap > 0:
        r = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(overlap) + 0.5) / overlap)
        if left:
            w[:overlap] = torch.minimum(w[:overlap], r)
        if right:
            w[n - overlap :] = torch.minimum(w[n - overlap :], r.flip(0))
    return w.clamp_min(1e-4)


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    multiple: int = 1,
    fixed_size: bool = False,
    out_channels: int | None = None,
    blend: bool = True,
) -> torch.Tensor:
    """Apply a size-preserving image-to-image `fn` to (B, C, H, W) `x` in overlapping `tile` x `tile` windows.

    `multiple`: the network's stride (the tile and every padded input are multiples of it). `fixed_size`: the
    network accepts exactly `tile` x `tile` (SPADE with its style encoder), so small inputs are padded up to it.
    An image no larger than one tile runs in one pass. `blend=False` gives hard-edged tiles (for comparisons).
    """
    if tile % multiple:
        raise ValueError(f"tile size {tile} must be a multiple of the network stride {multiple}")
    h, w = x.shape[-2:]
    if h <= tile and w <= tile:
        xp = pad_to_multiple(x, multiple, (tile, tile) if fixed_size else None)
        return crop_to(fn(xp), (h, w))
    # Pad to at least one tile on each axis so every window is full size.
    xp = pad_to_multiple(x, multiple, (max(h, tile), max(w, tile)))
    H, W = xp.shape[-2:]
    ys, xs = tile_starts(H, tile, overlap), tile_starts(W, tile, overlap)
    out = weight = None
    done, total = 0, len(ys) * len(xs)
    for y0 in ys:
        for x0 in xs:
            y = fn(xp[..., y0 : y0 + tile, x0 : x0 + tile])
            done += 1
            if total >= 8 and done % (total // 8) == 0:  # a large image's progress in the log, ~8 lines
                log.info("tile %d of %d (%dx%d px)", done, total, w, h)
            if out is None:
                out = torch.zeros(y.shape[0], out_channels or y.shape[1], H, W, dtype=torch.float32)
                weight = torch.zeros(1, 1, H, W, dtype=torch.float32)
            if blend:
                wy = _ramp(tile, overlap, y0 > 0, y0 + tile < H)
                wx = _ramp(tile, overlap, x0 > 0, x0 + tile < W)
                wt = (wy[:, None] * wx[None, :])[None, None]
            else:  # later tiles simply overwrite earlier ones
                wt = torch.ones(1, 1, tile, tile)
                out[..., y0 : y0 + tile, x0 : x0 + tile] = 0
                weight[..., y0 : y0 + tile, x0 : x0 + tile] = 0
            out[..., y0 : y0 + tile, x0 : x0 + tile] += y.float().cpu() * wt
            weight[..., y0 : y0 + tile, x0 : x0 + tile] += wt
    return crop_to(out / weight, (h, w)).to(x.dtype if x.is_floating_point() else torch.float32)


# ------------------------------------------------------------------------------------------ shared instance norm
def _instance_norms(net: nn.Module) -> list[nn.modules.instancenorm._InstanceNorm]:
    return [
        m
        for m in net.modules()
        if isinstance(m, nn.modules.instancenorm._InstanceNorm) and not m.track_running_stats
    ]


class _NormStats:
    def __init__(self) -> None:
        self.mode = "record"
        self.stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}


@contextmanager
def shared_instance_norm(net: nn.Module) -> Iterator[_NormStats]:
    """Within the block, the net's instance norms record their (mean, var) on the first forward pass and reuse
    them on every later one, so tiles are normalised like the whole image. Yields a handle (`.stats`)."""
    state = _NormStats()
    norms = _instance_norms(net)
    originals = {}

    def patched(m: nn.Module):
        def forward(x: torch.Tensor) -> torch.Tensor:
            key = id(m)
            if key not in state.stats:
                var, mean = torch.var_mean(x.float(), dim=(-2, -1), keepdim=True, correction=0)
                state.stats[key] = (mean, var)
            mean, var = state.stats[key]
            y = (x.float() - mean) / torch.sqrt(var + m.eps)
            if m.affine:
                y = y * m.weight[None, :, None, None] + m.bias[None, :, None, None]
            return y.to(x.dtype)

        return forward

    for m in norms:
        originals[m] = m.__dict__.get("forward")
        m.forward = patched(m)
    try:
        yield state
    finally:
        for m, orig in originals.items():
            if orig is None:
                del m.forward
            else:
                m.forward = orig


def has_instance_norm(net: nn.Module) -> bool:
    return bool(_instance_norms(net))


def run_large(
    net_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    net: nn.Module | None = None,
    tile: int = 512,
    overlap: int = 64,
    multiple: int = 4,
    fixed_size: bool = False,
    stats_max_side: int = 1024,
    stats_mode: str = "bilinear",
) -> torch.Tensor:
    """The generator on an image of any size: one padded pass when it fits in a tile, otherwise blended tiles.

    When `net` has instance norms, their statistics come from one pass over the whole image, downscaled so its
    longer side is at most `stats_max_side` (`stats_mode`: 'bilinear' for photos, 'nearest' for one-hot labels).
    """
    h, w = x.shape[-2:]
    if h <= tile and w <= tile and not fixed_size:
        return apply_padded(net_fn, x, multiple)
    if net is None or not has_instance_norm(net):
        return tiled_apply(net_fn, x, tile, overlap, multiple, fixed_size)
    with shared_instance_norm(net):
        scale = min(1.0, stats_max_side / max(h, w))
        small = x
        if scale < 1.0:
            size = (max(multiple, round(h * scale)), max(multiple, round(w * scale)))
            kw = {"antialias": True, "align_corners": False} if stats_mode == "bilinear" else {}
            small = F.interpolate(x.float(), size=size, mode=stats_mode, **kw).to(x.dtype)
        apply_padded(net_fn, small, multiple)  # records the statistics
        return tiled_apply(net_fn, x, tile, overlap, multiple, fixed_size)
