"""Region-style distance: how far each region of a painted sketch is, in style, from the painting region it was
painted from (the painter's table in docs/paint.md; lower is closer).

    D = (1/K) Σ_k Σ_l || G_l(x; M_k) − G_l(s; S_k) ||²_F,    G_l(x; M) = Σ_p M_p Φ_l(x)_p Φ_l(x)_pᵀ / Σ_p M_p

over the sketch's classes k that cover at least 1 % of it: M_k is the region on layer l's grid (labels resized nearest),
S_k its source pixels in the paintings (its own class, the class it borrows, or the whole paintings:
`underpainting.data.paintings.region_sources`; several paintings pooled by their weights), Φ_l the VGG layers relu1_1
... relu4_1 (Gatys et al. 2016's style layers without relu5_1). The same network must score every method compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from underpainting.data.paintings import Painting, Source
from underpainting.features.vgg import VGGFeatures

REGION_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def _mask(weights: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(weights[None].float(), size=size, mode="nearest")[0, 0].flatten()


def masked_gram(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(C, C) Gram matrix of (1, C, h, w) features over the positions weighted by (h·w,) `weights`."""
    x = features[0].flatten(1).float()
    return (x * weights) @ x.T / weights.sum().clamp_min(1e-12)


@torch.no_grad()
def region_style_distance(
    image: torch.Tensor,
    labels: torch.Tensor,
    paintings: Sequence[Painting],
    sources: Mapping[int, Sequence[Source]],
    vgg: VGGFeatures,
    min_fraction: float = 0.01,
) -> tuple[float, dict[int, float]]:
    """(D, {class: its term}) for an output (1, 3, H, W) in [-1, 1] of the sketch `labels` (1, H, W, resized to the
    image when needed). `vgg` must return `REGION_STYLE_LAYERS`."""
    labels = F.interpolate(labels[None].float(), size=image.shape[-2:], mode="nearest")[0].long()
    out_feats = vgg(image.float())
    style_feats = [vgg(p.image.float()) for p in paintings]
    per_class: dict[int, float] = {}
    for k, srcs in sources.items():
        if float((labels == k).float().mean()) < min_fraction or not srcs:
            continue
        total = 0.0
        for n in REGION_STYLE_LAYERS:
            f = out_feats[n]
            g_out = masked_gram(f, _mask((labels == k).float(), tuple(f.shape[-2:])))
            acc, wsum = 0.0, 0.0
            for s in srcs:
                p, sf = paintings[s.index], style_feats[s.index][n]
                where = (
                    (p.labels == s.cls).float() if s.cls is not None else torch.ones(1, *p.image.shape[-2:])
                )
                m = _mask(where, tuple(sf.shape[-2:]))
                if m.sum() == 0:
                    continue
                weight = float(s.weight) * float(m.sum())
                acc, wsum = acc + weight * masked_gram(sf, m), wsum + weight
            if wsum:
                total += float((g_out - acc / wsum).pow(2).sum())
        per_class[k] = total
    return (sum(per_class.values()) / len(per_class) if per_class else 0.0), per_class
