"""How visible tile seams are: a measure the tiling tests (test_tiling, test_infer) compare against the untiled
output."""

from __future__ import annotations

import torch


def seam_gradient_ratio(img: torch.Tensor, reference: torch.Tensor, columns: list[int]) -> float:
    """Mean |horizontal gradient| of `img` across the given column boundaries (between c-1 and c), relative to the
    same measure on `reference` (e.g. the untiled output). 1.0 means the seams add no edge; a visible seam is > 1."""

    def grad_at(t: torch.Tensor) -> torch.Tensor:
        g = (t[..., 1:] - t[..., :-1]).abs()  # boundary c sits at index c-1
        return g[..., [c - 1 for c in columns]].mean()

    return float(grad_at(img.float()) / grad_at(reference.float()).clamp_min(1e-8))
