"""VGG19 perceptual loss of pix2pixHD/SPADE (Wang et al. 2018, Sec. 3.3; Park et al. 2019, Sec. 4):

    L_VGG(x, y) = sum_i w_i * || phi_i(x) - phi_i(y) ||_1,   phi_i = relu{1..5}_1,  w = (1/32, 1/16, 1/8, 1/4, 1)

with the target's features detached. The VGG comes from `underpainting.features.vgg` (ImageNet weights through the
torch hub cache or a local file; offline and missing -> `VGGWeightsError` saying where to put the file or to set
`lambda_vgg: 0`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from underpainting.features.vgg import VGGFeatures, VGGWeightsError

# NVlabs/SPADE models/networks/architecture.py VGG19 slices end at relu1_1 ... relu5_1; loss.py VGGLoss weights.
REFERENCE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
REFERENCE_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


class VGGPerceptualLoss(nn.Module):
    """Weighted L1 distance between VGG activations of `generated` and `target` (both (B, 3, H, W) in [-1, 1]).

    Args:
        weights: "imagenet" (torchvision VGG19 through the hub cache), a local .pth, or "random" (tests only).
        reference_input: feed [-1, 1] images to VGG without the weights' mean/std, as NVlabs/SPADE does. The default
            (False) uses the input convention the weights were trained with; loss magnitudes differ between the two.
        config_key: the config key named in the missing-weights error.
    """

    def __init__(
        self,
        weights: str | Path = "imagenet",
        layers: Sequence[str] = REFERENCE_LAYERS,
        layer_weights: Sequence[float] = REFERENCE_WEIGHTS,
        arch: str = "vgg19",
        convention: str | None = None,
        reference_input: bool = False,
        download: bool = True,
        config_key: str = "model.vgg_weights",
    ) -> None:
        super().__init__()
        if len(layers) != len(layer_weights):
            raise ValueError(f"{len(layers)} VGG layers but {len(layer_weights)} layer weights")
        try:
            self.vgg = VGGFeatures(
                layers,
                arch=arch,
                weights=weights,
                convention=convention,
                download=download,
                config_key=config_key,
            )
        except VGGWeightsError as err:
            raise VGGWeightsError(
                f"{err}\n  Or switch the perceptual term off with `model.lambda_vgg=0` (SPADE then trains with the "
                "GAN and feature-matching losses only)."
            ) from None
        self.layer_weights = dict(zip(self.vgg.layers, layer_weights, strict=True))
        self.reference_input = reference_input

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.reference_input:
            return self.vgg(images)
        x, out = images, {}
        for name, module in self.vgg.body.named_children():
            x = module(x)
            if name in self.layer_weights:
                out[name] = x
        return out

    def forward(self, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # One pass over both halves: half the kernel launches, same result as two passes (no batch statistics).
        feats = self.features(torch.cat([generated, target.detach()], dim=0))
        n = generated.shape[0]
        loss = generated.new_zeros((), dtype=torch.float32)
        for name, w in self.layer_weights.items():
            f = feats[name].float()
            loss = loss + w * F.l1_loss(f[:n], f[n:].detach())
        return loss
