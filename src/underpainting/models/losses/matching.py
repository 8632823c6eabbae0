"""Feature matching (pix2pixHD, Wang et al. 2018, Eq. 4) and the VAE's KL term (SPADE, Park et al. 2019, Sec. 3.3)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class FeatureMatchingLoss(nn.Module):
    """sum_k (1/num_D) sum_i || D_k^(i)(x, fake) - D_k^(i)(x, real) ||_1 over each scale's intermediate layers.

    The inputs are a multi-scale discriminator's outputs (a list per scale of per-layer features, the last being
    the prediction, which is left out); the real features are detached, as in NVlabs/SPADE's pix2pix_model.py.
    """

    def forward(
        self, fake: Sequence[Sequence[torch.Tensor]], real: Sequence[Sequence[torch.Tensor]]
    ) -> torch.Tensor:
        loss = fake[0][0].new_zeros((), dtype=torch.float32)
        for fake_scale, real_scale in zip(fake, real, strict=True):
            for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True):
                loss = loss + F.l1_loss(f.float(), r.detach().float())
        return loss / len(fake)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over batch and latent dims (the reference's KLDLoss sums, not means)."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
