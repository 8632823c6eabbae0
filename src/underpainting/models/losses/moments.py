"""Per-region feature moments (Kolkin et al. 2019, "Style Transfer by Relaxed Optimal Transport and Self-Similarity"
(STROTSS), Sec. 2.2, the moment matching term ℓ_m; reference code nkolkin13/STROTSS `contextual_loss.py`
`moment_loss`), with the region guidance of Sec. 2.3: each output region is compared with the style pixels it
draws from.

    ℓ_m = Σ_regions a_k Σ_l [ mean|μ_l,k(x) − μ_l,k(s)| + mean|Σ_l,k(x) − Σ_l,k(s)| ]

μ and Σ are the mean and covariance of a layer's features over the region (the output's on at most `samples`, 0: all,
random positions per step, as STROTSS samples about a thousand), features divided by the style's RMS per layer so
every layer counts alike; a_k is the region's share of the output. Nearest-neighbour targets choose *which* style
features appear, not how often, so on their own they drift from the style's statistics (more edges here, fewer
there); this term holds each region's feature statistics to its source's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _resize_weights(weights: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(weights[None].float(), size=size, mode="nearest")[0].flatten()


def weighted_moments(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (C,) and covariance (C, C) of the columns of (C, N) `x` weighted by (N,) `w`."""
    w = w / w.sum()
    mu = x @ w
    d = x - mu[:, None]
    return mu, (d * w) @ d.T


class RegionMomentLoss(nn.Module):
    """STROTSS's moment term per region (module docstring). `set_target` once per scale; `forward(features)`."""

    def __init__(self, layers: Sequence[str], samples: int = 1024) -> None:
        super().__init__()
        self.layers, self.samples = list(layers), int(samples)
        self.targets: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self.scale: dict[str, torch.Tensor] = {}
        self.masks: dict[tuple[int, int, int], torch.Tensor] = {}
        self.output_labels = torch.zeros(1, 1, 1, dtype=torch.long)
        self.shares: dict[int, float] = {}

    @torch.no_grad()
    def set_target(
        self,
        style_features: Sequence[Mapping[str, torch.Tensor]],
        source_weights: Mapping[int, Sequence[torch.Tensor]],
        output_labels: torch.Tensor,
    ) -> None:
        """style_features: {layer: (1, C, h, w)} per style image; source_weights: {output class: one (1, H, W) pixel
        weight map per style image (0: not a source)}; output_labels: (1, H, W) ids at the output image's size."""
        self.scale = {
            n: torch.cat([f[n][0].flatten(1) for f in style_features], 1)
            .float()
            .pow(2)
            .mean()
            .sqrt()
            .clamp_min(1e-6)
            for n in self.layers
        }
        self.targets, self.masks, self.shares = {}, {}, {}
        for cls, maps in source_weights.items():
            share = float((output_labels == cls).float().mean())
            if share == 0:
                continue
            self.shares[cls] = share
            for n in self.layers:
                cols, ws = [], []
                for f, m in zip(style_features, maps, strict=True):
                    w = _resize_weights(m, tuple(f[n].shape[-2:]))
                    keep = w > 0
                    cols.append(f[n][0].flatten(1)[:, keep].float() / self.scale[n])
                    ws.append(w[keep])
                x, w = torch.cat(cols, 1), torch.cat(ws)
                if x.shape[1] >= 2:
                    self.targets[(cls, n)] = weighted_moments(x, w)
        self.output_labels = output_labels

    def _positions(self, cls: int, size: tuple[int, int]) -> torch.Tensor:
        """Positions of region `cls` on a (h, w) feature map (labels resized nearest), cached per map size."""
        key = (cls, *size)
        if key not in self.masks:
            self.masks[key] = (_resize_weights(self.output_labels, size) == cls).nonzero()[:, 0]
        return self.masks[key]

    def forward(
        self, features: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        loss = features[self.layers[0]].new_zeros((), dtype=torch.float32)
        for n in self.layers:
            loss = loss + self.layer_term(n, features[n], generator)
        return loss

    def layer_term(self, n: str, f: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Layer `n`'s terms over every region, for a caller that adds each layer's term as soon as the VGG reaches
        it; `generator` draws the sampled positions."""
        loss = f.new_zeros((), dtype=torch.float32)
        for (cls, layer), (mu_s, cov_s) in self.targets.items():
            if layer != n:
                continue
            pos = self._positions(cls, tuple(f.shape[-2:])).to(f.device)
            if len(pos) < 2:
                continue
            if 0 < self.samples < len(pos):
                pos = pos[
                    torch.randperm(len(pos), generator=generator, device="cpu")[: self.samples].to(pos.device)
                ]
            x = f[0].flatten(1)[:, pos].float() / self.scale[n]
            mu, cov = weighted_moments(x, torch.ones(len(pos), device=x.device))
            loss = loss + self.shares[cls] * ((mu - mu_s).abs().mean() + (cov - cov_s).abs().mean())
        return loss
