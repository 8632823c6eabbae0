"""FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) on torchmetrics, with any `feature=` module.

torchmetrics keeps running sums (FID) or feature lists (KID) as metric states, so both synchronise across DDP ranks
in `compute()`. Both follow torch-fidelity's statistics (tested against it); KID adds what our small sets need:
its subset size adapts to the set (see `protocol.kid_subset_size`), with subsets drawn as torch-fidelity draws them.
"""

from __future__ import annotations

import warnings

import numpy as np
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

    Subsets are drawn as torch-fidelity draws them (`numpy.random.RandomState(seed).choice`, generated set first),
    so with the same features and seed the mean and std equal torch-fidelity's. `subset_size` is an upper bound:
    smaller sets use half the smaller set (`protocol.kid_subset_size`; torch-fidelity raises instead).
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
        if m == 0:
            raise RuntimeError(
                f"KID needs at least {protocol.KID_MIN} images per set, got {fake.shape[0]} generated "
                f"and {real.shape[0]} reference"
            )
        self.used_subset_size = m
        rng = np.random.RandomState(self.seed)
        scores = []
        for _ in range(self.subsets):
            f = fake[torch.from_numpy(rng.choice(fake.shape[0], m, replace=False)).to(fake.device)]
            r = real[torch.from_numpy(rng.choice(real.shape[0], m, replace=False)).to(real.device)]
            scores.append(poly_mmd(r, f, self.degree, self.gamma, self.coef))
        scores = torch.stack(scores)
        return scores.mean(), scores.std(unbiased=False)
