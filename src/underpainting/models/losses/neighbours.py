"""Neural neighbours: match every output hypercolumn to its nearest style hypercolumn once, then pull the output's
features towards the matches (Kolkin et al. 2022, "Neural Neighbor Style Transfer", Sec. 3; reference code
nkolkin13/NeuralNeighborStyleTransfer `utils/stylize.py`), with region guidance: an output position of class k only
matches style positions of the classes k draws from (the masked cost of STROTSS, Kolkin et al. 2019, Sec. 2.3).

- Matching (`nearest_neighbours`, `guided_nearest_neighbours`): the centred cosine distance of NNST's
  `pairwise_distances_cos_center`, d(x, y) = 1 − <x − μ_x, y − μ_y> / (|x − μ_x| |y − μ_y|), each set centred on its
  own mean; exact, in chunks of queries so memory stays chunk x keys, in fp32 (bf16 scores would flip near-ties).
- Targets (`block_targets`): each matched style cell gives its block of every VGG layer at the layer's own resolution
  (relu1_x: 4 x 4 values per cell, relu2_x: 2 x 2, relu3_x: 1; relu4_x: the cell's value of its coarser grid), the
  way NNST's final pass compares layers separately at their native resolution.
- Loss (`NeuralNeighbourLoss`): NNST's cosine term per layer, E = (1/L) Σ_l mean_p [1 − cos(Φ_l(x)_p, T_l,p)], plus
  an optional relative L2 term that also matches the features' magnitude.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from underpainting.features.hypercolumns import NNST_CELL, layer_stride


def centred_unit(x: torch.Tensor, mean: torch.Tensor | None = None, inplace: bool = False) -> torch.Tensor:
    """Rows of (N, C) `x` minus `mean` (default: their own mean), scaled to unit length: NNST's `center` and cosine
    normalisation. `inplace` reuses `x` (a style bank of tens of thousands of hypercolumns is hundreds of MB)."""
    x = x if inplace else x.float().clone()
    x.sub_(x.mean(0) if mean is None else mean.float())
    return x.div_(x.norm(dim=1, keepdim=True).clamp_min(1e-8))


@torch.no_grad()
def nearest_neighbours(
    queries: torch.Tensor, keys: torch.Tensor, chunk_size: int = 1024, key_cost: torch.Tensor | None = None
) -> torch.Tensor:
    """For each row of unit (N, C) `queries`, the index of the unit (M, C) key with the smallest cosine distance
    (1 − q·k), multiplied by `key_cost` (M,) when given. Exact; `chunk_size` queries at a time (memory: chunk x M)."""
    if keys.shape[0] == 0:
        raise ValueError("no style features to match against")
    out = torch.empty(queries.shape[0], dtype=torch.long, device=queries.device)
    with torch.autocast(device_type=queries.device.type, enabled=False):
        k = keys.float()
        for s in range(0, queries.shape[0], chunk_size):
            sim = queries[s : s + chunk_size].float() @ k.T
            if key_cost is None:
                out[s : s + chunk_size] = sim.argmax(dim=1)
            else:  # in place: (1 − sim)⁺ · cost
                out[s : s + chunk_size] = sim.neg_().add_(1).clamp_(min=0).mul_(key_cost).argmin(dim=1)
    return out


@torch.no_grad()
def guided_nearest_neighbours(
    unit_queries: torch.Tensor,
    query_labels: torch.Tensor,
    unit_keys: torch.Tensor,
    key_weights: Mapping[int, torch.Tensor],
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Region-guided matching: a query (N, C) of class k matches only keys with `key_weights[k]` (M,) > 0, the
    cosine distance divided by that weight (a painting's weight for the class; equal weights leave plain NNST).
    Queries and keys come centred, each set on its own mean, and unit-length (`centred_unit`: the keys once per
    scale). Returns (N,) indices into the keys."""
    q = unit_queries
    out = torch.zeros(len(q), dtype=torch.long, device=q.device)
    for cls in query_labels.unique().tolist():
        if cls not in key_weights:
            raise ValueError(
                f"class {cls} of the output has no key weights (which style features may it match?)"
            )
        rows = (query_labels == cls).nonzero()[:, 0]
        w = key_weights[cls].to(unit_keys.device).float()
        cols = (w > 0).nonzero()[:, 0]
        if len(cols) == 0:
            raise ValueError(f"class {cls}: every style feature has weight 0; nothing to match against")
        w = w[cols]
        cost = None if bool((w == w[0]).all()) else 1.0 / w
        out[rows] = cols[nearest_neighbours(q[rows], unit_keys[cols], chunk_size, cost)]
    return out


class CellBank:
    """The style side of the matching at one scale: each style image's feature maps, flattened and concatenated per
    layer, and where each cell of its grid (row-major, images one after another) lies in them, so that a match index
    gives the targets of every layer (`block_targets`) without copying blocks. The given feature maps are released
    layer by layer as they are concatenated (`release`), so the bank never holds them twice."""

    def __init__(
        self,
        features: Sequence[dict[str, torch.Tensor]],
        grids: Sequence[tuple[int, int]],
        layers: Sequence[str],
        cell: int = NNST_CELL,
        release: bool = False,
    ) -> None:
        self.layers, self.cell = list(layers), cell
        self.maps: dict[str, torch.Tensor] = {}
        self.corner: dict[str, torch.Tensor] = {}  # flat index of each cell's first position
        self.row: dict[str, torch.Tensor] = {}  # row length of the map each cell lies in
        for n in self.layers:
            r = cell / layer_stride(n)
            maps, corners, rows, offset = [], [], [], 0
            for f, (gh, gw) in zip(features, grids, strict=True):
                x = f[n][0].detach().float()
                h, w = x.shape[-2:]
                cy, cx = torch.arange(gh, device=x.device), torch.arange(gw, device=x.device)
                ys = (cy * r).long().clamp(max=h - 1) if r < 1 else cy * int(r)
                xs = (cx * r).long().clamp(max=w - 1) if r < 1 else cx * int(r)
                corners.append((offset + ys[:, None] * w + xs[None, :]).flatten())
                rows.append(torch.full((gh * gw,), w, device=x.device))
                maps.append(x.flatten(1))
                offset += h * w
            self.maps[n] = torch.cat(maps, dim=1)
            self.corner[n], self.row[n] = torch.cat(corners), torch.cat(rows)
            if release:
                for f in features:
                    del f[n]

    def __len__(self) -> int:
        return len(self.corner[self.layers[0]])


def block_targets(
    bank: CellBank, indices: torch.Tensor, grid: tuple[int, int], layers: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """{layer: (1, C, h, w)} targets for an output whose cells (`grid`, row-major) matched `indices` of `bank`: the
    matched cells' r x r blocks at the layer's resolution (r = cell / stride, h = grid·r), or, for layers coarser than
    the cells, the matched value of every r⁻¹-th cell."""
    gh, gw = grid
    out = {}
    for n in layers or bank.layers:
        r = bank.cell / layer_stride(n)
        corner = bank.corner[n][indices].view(gh, gw)
        if r >= 1:
            r = int(r)
            d = torch.arange(r, device=corner.device)
            row = bank.row[n][indices].view(gh, 1, gw, 1)
            index = corner.view(gh, 1, gw, 1) + d.view(1, r, 1, 1) * row + d.view(1, 1, 1, r)
            index = index.reshape(gh * r, gw * r)
        else:
            step = round(1 / r)
            index = corner[::step, ::step]
        out[n] = bank.maps[n][:, index.flatten()].view(1, -1, *index.shape)
    return out


class NeuralNeighbourLoss(nn.Module):
    """E = (1/L) Σ_l mean_p [1 − cos(Φ_l(x)_p, T_l,p)] + l2_weight · (1/L) Σ_l |Φ_l(x) − T_l|² / |T_l|² over fixed
    targets T (NNST Sec. 3: "we optimize the output to minimize the cosine distance to the target features").

    `set_target(targets)` once per scale (or when matches are refreshed); the output's feature maps are cropped to the
    targets' size (the cells cover the image but for a rim of under one cell).
    """

    def __init__(self, l2_weight: float = 0.0) -> None:
        super().__init__()
        self.l2_weight = float(l2_weight)
        self.units: dict[str, torch.Tensor] = {}
        self.targets: dict[str, torch.Tensor] = {}

    def set_target(self, targets: Mapping[str, torch.Tensor]) -> None:
        # unit targets once, so a step computes one norm per position, not two (F.cosine_similarity's cost); the
        # raw targets only for the L2 term (at 1024 px a relu1_x target is 200 MB)
        # in bf16: a cosine needs no more digits, and it halves the largest tensors the painter keeps
        self.units = {
            n: F.normalize(t.detach().float(), dim=1, eps=1e-6).bfloat16() for n, t in targets.items()
        }
        self.targets = {n: t.detach().float() for n, t in targets.items()} if self.l2_weight else {}
        self.energy = {n: t.float().pow(2).mean().clamp_min(1e-12) for n, t in targets.items()}

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if not self.units:
            raise RuntimeError("NeuralNeighbourLoss.set_target(...) must be called before the loss")
        return sum(self.layer_term(n, features[n]) for n in self.units)

    def layer_term(self, n: str, x: torch.Tensor) -> torch.Tensor:
        """Layer `n`'s share of the loss, for a caller that adds each layer's term as soon as the VGG reaches it."""
        u = self.units[n]
        h, w = min(u.shape[-2], x.shape[-2]), min(u.shape[-1], x.shape[-1])
        # the bf16 units multiply the features as they are (type promotion): no full-size copy of a target in the
        # features' dtype, which the product would keep for the backward (at 1024 px in fp32: ~1 GB); bf16 features
        # (autocast) stay bf16; the sums accumulate in fp32 either way
        x, u = x[..., :h, :w], u[..., :h, :w]
        dot = (x * u).sum(1, dtype=torch.float32)
        cos = dot * x.pow(2).sum(1, dtype=torch.float32).clamp_min(1e-12).rsqrt()
        loss = (1 - cos).mean()
        if self.l2_weight:
            t = self.targets[n][..., :h, :w]
            loss = loss + self.l2_weight * (x.float() - t).pow(2).mean() / self.energy[n]
        return loss / len(self.units)
