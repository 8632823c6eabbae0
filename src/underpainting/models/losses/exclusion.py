"""Gradient exclusion loss (Zhang, Ng & Chen 2018, "Single Image Reflection Separation with Perceptual Losses",
Sec. 3.3), as Pu et al. 2022 use it between the two X-ray components.

Two layers of a mixture rarely have edges in the same place, so the loss is the product of their gradient maps,

    L_excl = sum_{n=1}^{N} ( ||Psi(grad_x a_n, grad_x b_n)||_F^(1/2) + ||Psi(grad_y a_n, grad_y b_n)||_F^(1/2) ) / (3N)

with Psi(g1, g2) = tanh(g1 / 2) * tanh(lambda g2 / 2) (= 2 sigmoid - 1), lambda = 2 mean|grad a| / mean|grad b|
balancing the two gradient magnitudes, at N scales (2x average pooling between them); the Frobenius norm is taken
as the root mean square, as in the reference code (`mean(Psi^2) ** 0.25`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along H and along W of (B, C, H, W)."""
    return x[:, :, 1:, :] - x[:, :, :-1, :], x[:, :, :, 1:] - x[:, :, :, :-1]


class ExclusionLoss(nn.Module):
    """`levels` scales (Pu et al. code: 3). `forward(a, b)`: a is the component whose gradients are rescaled by
    lambda (the reference passes the concealed part first)."""

    def __init__(self, levels: int = 3, eps: float = 1e-8) -> None:
        super().__init__()
        self.levels, self.eps = int(levels), float(eps)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = a.new_zeros(())
        for level in range(self.levels):
            for ga, gb in zip(image_gradients(a), image_gradients(b), strict=True):
                lam = 2.0 * ga.abs().mean() / (gb.abs().mean() + self.eps)
                psi = (torch.sigmoid(ga) * 2 - 1) * (torch.sigmoid(gb * lam) * 2 - 1)
                total = total + (psi.pow(2).mean() + self.eps) ** 0.25
            if level + 1 < self.levels:
                a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        return total / (3 * self.levels)
