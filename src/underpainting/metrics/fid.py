"""FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) on torchmetrics, with any `feature=` module.

torchmetrics keeps running sums (FID) or feature lists (KID) as metric states, so both synchronise across DDP ranks
in `compute()`. We add what our small sets need: KID's subset size shrinks to the smaller set, and its subsets are
drawn from a seeded generator so the same features give the same number twice.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance, poly_mmd
from torchmetrics.utilities.data import dim_zero_cat

from underpainting.metrics import protocol


class Precomputed(nn.Module):
    """Identity "feature extractor": lets one extractor pass feed FID and KID (and tests feed fixed features)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def FID(feature: nn.Module) -> FrechetInceptionDistance:  # noqa: N802 - reads like the class it builds
    """torchmetrics' FID on `feature` (images go to the module as they are: [-1, 1] floats for ours)."""
    return FrechetInceptionDistance(feature=feature, reset_real_features=True, normalize=False)


class KID(KernelInceptionDistance):
    """KID = unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets.

    `subset_size` is an upper bound: it shrinks to min(n_generated, n_reference) (torchmetrics raises instead).
    """

    def __init__(
        self,
        feature: nn.Module,
        subsets: int = protocol.KID_SUBSETS,
        subset_size: int = protocol.KID_SUBSET_SIZE,
        seed: int = protocol.KID_SEED,
        **kwargs,
    ) -> None:
        with (
            warnings.catch_warnings()
        ):  # "saves all features in a buffer": yes, by design, and our sets are small
            warnings.simplefilter("ignore", UserWarning)
            super().__init__(
                feature=feature,
                subsets=subsets,
                subset_size=subset_size,
                degree=protocol.KID_DEGREE,
                **kwargs,
            )
        self.seed = seed
        self.used_subset_size = 0

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        real = dim_zero_cat(self.real_features)
        fake = dim_zero_cat(self.fake_features)
        m = protocol.kid_subset_size(fake.shape[0], real.shape[0], self.subset_size)
        if m < protocol.KID_MIN:
            raise RuntimeError(
                f"KID needs at least {protocol.KID_MIN} images per set, got {fake.shape[0]} generated "
                f"and {real.shape[0]} reference"
            )
        self.used_subset_size = m
        gen = torch.Generator().manual_seed(self.seed)
        scores = []
        for _ in range(self.subsets):
            r = real[torch.randperm(real.shape[0], generator=gen)[:m].to(real.device)]
            f = fake[torch.randperm(fake.shape[0], generator=gen)[:m].to(fake.device)]
            scores.append(poly_mmd(r, f, self.degree, self.gamma, self.coef))
        scores = torch.stack(scores)
        return scores.mean(), scores.std(unbiased=False)
