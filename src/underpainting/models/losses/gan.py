"""Adversarial objectives: LSGAN (Mao et al. 2017; CycleGAN's default, Zhu et al. 2017 section 4), vanilla
(Goodfellow et al. 2014; pix2pix) and hinge (Lim & Ye 2017; SPADE). Computed in fp32 even under autocast."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

GANMode = Literal["lsgan", "vanilla", "hinge"]


class GANLoss(nn.Module):
    """`loss(prediction, target_is_real, for_discriminator=True)`.

    `prediction` may be a tensor or a list (multi-scale discriminators); a list element that is itself a list is a
    discriminator's intermediate features, of which the last entry is the prediction. The losses of the scales are
    averaged.
    """

    def __init__(self, mode: GANMode = "lsgan", real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        if mode not in ("lsgan", "vanilla", "hinge"):
            raise ValueError(f"gan mode must be lsgan, vanilla or hinge, got {mode!r}")
        self.mode = mode
        self.real_label, self.fake_label = real_label, fake_label

    def _single(self, pred: torch.Tensor, target_is_real: bool, for_discriminator: bool) -> torch.Tensor:
        pred = pred.float()
        if self.mode == "hinge":
            if not for_discriminator:
                return -pred.mean()  # the generator's hinge loss is linear (Lim & Ye 2017, eq. 9)
            return F.relu(1.0 - pred).mean() if target_is_real else F.relu(1.0 + pred).mean()
        target = torch.full_like(pred, self.real_label if target_is_real else self.fake_label)
        if self.mode == "lsgan":
            return F.mse_loss(pred, target)
        return F.binary_cross_entropy_with_logits(pred, target)

    def forward(self, prediction, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        if isinstance(prediction, (list, tuple)):
            preds = [p[-1] if isinstance(p, (list, tuple)) else p for p in prediction]
            return sum(self._single(p, target_is_real, for_discriminator) for p in preds) / len(preds)
        return self._single(prediction, target_is_real, for_discriminator)
