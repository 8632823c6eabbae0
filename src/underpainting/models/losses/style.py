"""Losses of optimisation-based neural style transfer, as small composable modules (after pystiche's `loss/`).

- Gatys, Ecker & Bethge 2016, "Image Style Transfer Using Convolutional Neural Networks" (CVPR): content loss,
  Gram-matrix style loss.
- Gatys, Ecker, Bethge, Hertzmann & Shechtman 2017, "Controlling Perceptual Factors in Neural Style Transfer"
  (CVPR), Sec. 4: spatial guidance with guided Gram matrices; official code: leongatys/NeuralImageSynthesis.
- Mahendran & Vedaldi 2015 / Johnson et al. 2016, Sec. 3.3: total variation regulariser.

Feature maps are (B, C, H, W); guides are (B, R, H, W) soft masks in [0, 1], one channel per region.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from underpainting.features.vgg import layer_names
from underpainting.models.losses.targets import Targets


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """G = F Fᵀ / N for features (B, C, H, W) with N = H·W positions -> (B, C, C).

    Dividing by N makes Gram matrices of differently sized images comparable (Gatys et al. 2016, Eq. 3-4, where
    the 1/(4 N² M²) factor folds into this normalisation and the MSE). Computed in fp32 whatever the input dtype:
    under bf16 autocast, sums of 10⁵-10⁶ products lose 2-3 significant digits, and the style loss is a small
    difference of large Gram entries.
    """
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w).float()
    with torch.autocast(device_type=f.device.type, enabled=False):
        return torch.bmm(f, f.transpose(1, 2)) / (h * w)


def guided_gram_matrix(features: torch.Tensor, guide: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Gram matrix of the features weighted by one guide: G_r = (F∘T_r)(F∘T_r)ᵀ / Σ T_r² (Gatys et al. 2017, Eq. 5).

    `guide` is (B, H, W) or (B, 1, H, W) at the feature resolution. Normalising by the guide's mass (instead of N)
    makes a region's Gram matrix the mean over the positions it covers, so it is comparable between a small sky
    in the content and a large sky in the style. An empty guide gives a zero matrix.
    """
    b, c, h, w = features.shape
    g = guide.reshape(b, 1, h * w).float()
    f = features.reshape(b, c, h * w).float() * g
    with torch.autocast(device_type=f.device.type, enabled=False):
        mass = (g * g).sum(dim=2, keepdim=True).clamp_min(eps)  # (B, 1, 1)
        return torch.bmm(f, f.transpose(1, 2)) / mass


GUIDE_MODES = ("simple", "inside", "all")


def guides_at_layers(
    guides: torch.Tensor, layers: Sequence[str], arch: str = "vgg19", mode: str = "simple"
) -> dict[str, torch.Tensor]:
    """Resize (B, R, H, W) guides to the feature resolution of each VGG layer.

    Modes of the official code's guide propagation (Gatys et al. 2017, Sec. 4.1 and supplementary):
    - ``simple``: area-resize the guide to the layer's size.
    - ``inside``: erode through the network: every 3x3 conv keeps a position only if its whole 3x3 neighbourhood
      is inside the region, every 2x2 pool takes the minimum; a position survives when its receptive field lies
      (mostly) inside the region, so features at region borders do not mix the two styles.
    - ``all``: the dilating counterpart (a position counts for every region its receptive field touches).
    """
    if mode not in GUIDE_MODES:
        raise ValueError(f"guide mode must be one of {', '.join(GUIDE_MODES)}, got {mode!r}")
    names = layer_names(arch)
    wanted = set(layers)
    out: dict[str, torch.Tensor] = {}
    g = guides.float()
    h, w = g.shape[-2:]
    for name in names:
        if not wanted - out.keys():
            break
        if name.startswith("pool"):
            h, w = h // 2, w // 2
            if mode == "inside":
                g = -F.max_pool2d(-g, 2)
            elif mode == "all":
                g = F.max_pool2d(g, 2)
        elif name.startswith("conv") and mode != "simple":
            g = -F.max_pool2d(-g, 3, 1, 1) if mode == "inside" else F.max_pool2d(g, 3, 1, 1)
        if name in wanted:
            out[name] = g if mode != "simple" else F.interpolate(guides.float(), size=(h, w), mode="area")
    return {name: out[name] for name in layers}


def default_layer_weights(layers: Sequence[str], arch: str = "vgg19") -> dict[str, float]:
    """1/C_l² per style layer, as in the official code of Gatys et al. 2017 (pystiche_papers `impl_params`)."""
    channels = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}  # same widths for VGG16 and VGG19
    names = layer_names(arch)
    unknown = [n for n in layers if n not in names]
    if unknown:
        raise ValueError(f"unknown {arch} layer(s) {unknown}")
    return {
        name: 1.0 / channels[int(name[4])] ** 2 for name in layers
    }  # conv3_1 / relu3_1 / pool3 -> block 3


class ContentLoss(nn.Module):
    """L_content = Σ_l w_l · mean((F_l(x) − F_l(c))²) (Gatys et al. 2016, Eq. 1; MSE as in the official code).

    Call `set_target(features)` with the content image's features, then `loss(features_of_x)`.
    """

    def __init__(self, layer_weights: Mapping[str, float]) -> None:
        super().__init__()
        self.layer_weights = dict(layer_weights)
        self.targets = Targets()

    @torch.no_grad()
    def set_target(self, features: Mapping[str, torch.Tensor]) -> None:
        self.targets.set({n: features[n].detach().float() for n in self.layer_weights})

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(
            w * F.mse_loss(features[n].float(), self.targets[n]) for n, w in self.layer_weights.items()
        )


class GramStyleLoss(nn.Module):
    """L_style = Σ_l w_l · mean((G_l(x) − A_l)²) with G = `gram_matrix` (Gatys et al. 2016, Eq. 5).

    Targets A_l are set from one or several style images: `set_target([feats_1, feats_2], weights=[0.7, 0.3])`
    blends their Gram matrices (Gatys et al. 2016, Sec. 3; Gatys et al. 2017, Sec. 4 "combining styles").
    """

    def __init__(self, layer_weights: Mapping[str, float]) -> None:
        super().__init__()
        self.layer_weights = dict(layer_weights)
        self.targets = Targets()

    @torch.no_grad()
    def set_target(
        self, style_features: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float] | None = None
    ) -> None:
        weights = _normalised(weights, len(style_features))
        self.targets.set(
            {
                n: sum(w * gram_matrix(f[n]) for w, f in zip(weights, style_features, strict=True))
                for n in self.layer_weights
            }
        )

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(
            w * F.mse_loss(gram_matrix(features[n]), self.targets[n].expand(features[n].shape[0], -1, -1))
            for n, w in self.layer_weights.items()
        )


class GuidedStyleLoss(nn.Module):
    """Spatially guided style loss (Gatys et al. 2017, Sec. 4.1, Eq. 6): Σ_r λ_r Σ_l w_l mean((G_r,l(x) − A_r,l)²).

    G_r,l is the `guided_gram_matrix` of x's features under the output's guide for region r (the content's layout);
    A_r,l the target for region r (the guided Gram of the matching region in the style image(s), or the global
    Gram of the style when the style has no such region). Set targets with `set_target(targets, guides,
    region_weights)`: targets {layer: (R, C, C)}, guides {layer: (1, R, h, w)} for the output image.
    """

    def __init__(self, layer_weights: Mapping[str, float]) -> None:
        super().__init__()
        self.layer_weights = dict(layer_weights)
        self.targets, self.guides = Targets(), Targets()
        self.active: dict[str, list[tuple[int, float]]] = {}

    @torch.no_grad()
    def set_target(
        self,
        targets: Mapping[str, torch.Tensor],
        guides: Mapping[str, torch.Tensor],
        region_weights: torch.Tensor | Sequence[float] | None = None,
    ) -> None:
        self.targets.set({n: targets[n].detach().float() for n in self.layer_weights})
        self.guides.set({n: guides[n].detach().float() for n in self.layer_weights})
        num_regions = next(iter(self.targets.values())).shape[0]
        if region_weights is None:
            region_weights = [1.0] * num_regions  # pystiche's MultiRegionOperator default: a plain sum
        region_weights = [float(v) for v in region_weights]
        if len(region_weights) != num_regions:
            raise ValueError(f"{len(region_weights)} region weights for {num_regions} regions")
        # Regions eroded away at a depth (mode 'inside') or switched off contribute nothing there.
        self.active = {
            n: [
                (r, lam) for r, lam in enumerate(region_weights) if lam > 0 and self.guides[n][:, r].sum() > 0
            ]
            for n in self.layer_weights
        }

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = features[next(iter(features))].new_zeros((), dtype=torch.float32)
        for n, w in self.layer_weights.items():
            f, g, a = features[n], self.guides[n], self.targets[n]
            for r, lam in self.active[n]:
                gram = guided_gram_matrix(f, g[:, r].expand(f.shape[0], -1, -1))
                total = total + (w * lam) * F.mse_loss(gram, a[r].expand_as(gram))
        return total


class TotalVariationLoss(nn.Module):
    """Mean squared difference of neighbouring pixels (Mahendran & Vedaldi 2015, Eq. 5 with β = 2), a smoothness
    prior that removes high-frequency noise from optimised images (Johnson et al. 2016, Sec. 3.3)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        dy = image[..., 1:, :] - image[..., :-1, :]
        dx = image[..., :, 1:] - image[..., :, :-1]
        return dy.float().pow(2).mean() + dx.float().pow(2).mean()


def _normalised(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"need {n} non-negative blend weights with a positive sum, got {list(weights)}")
    total = float(sum(weights))
    return [float(w) / total for w in weights]
