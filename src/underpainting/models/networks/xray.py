"""The X-ray separation network, after Pu et al. 2022 ("Mixed X-Ray Image Separation for Artworks With Concealed
Designs", IEEE TIP 31; code jjhuangcs/Mixed-X-Ray-Image-Separation, `XraySepNet_model.py`).

The surface painting's X-ray x1 is predicted from the colour photo; the concealed part is the remainder x2 = X - x1.

- analysis: a small CNN of the photo (RGB) and of the regression baseline's surface estimate (its first guess)
  gives the shared features; one linear map of them corrects the first guess (zero at initialisation, so the
  untrained network *is* the regression baseline);
- synthesis: one linear convolution (identity at initialisation) maps that to the X-ray: the film/detector blur the
  photo lacks (the reference's synthesis is likewise linear: `recon_xr`, one 5x5 convolution);
- visible reconstruction: a CNN maps x1 back to the photo's luminance (the reference's `recon_r1x1`: 3 layers of
  64 features, 5x5, ReLU), so x1 has to keep the surface painting's structure.

Deviation from the reference, for CPU speed and robustness: its analysis sub-network is 5 unrolled iterations of
learned coupled ISTA with 64-channel sparse codes at full resolution (about 25 s per 32x64x64 batch on 2 shared CPU
cores here, hours per painting); this one is pointwise plus one 5x5 map and trains in about a minute.
"""

from __future__ import annotations

import torch
from torch import nn

from underpainting.data.colour import luminance


def _identity_(conv: nn.Conv2d) -> None:
    with torch.no_grad():
        conv.weight.zero_()
        k = conv.weight.shape[-1] // 2
        conv.weight[:, :, k, k] = 1.0 / conv.weight.shape[1]
        if conv.bias is not None:
            conv.bias.zero_()


class XRaySeparationNet(nn.Module):
    """`forward(xray, visible, init)` -> {'x1': surface X-ray, 'x2': concealed X-ray, 'visible_rec': luminance}.

    Args:
        visible_channels: 3 (RGB photo: heavy pigments need not follow luminance) or 1 (luminance, as the reference).
        features / layers / kernel: width, depth and filter size of the analysis CNN (kernel 1: a pointwise
            response; larger kernels see context, and can start to explain concealed content from the photo).
        synthesis_kernel: size of the linear synthesis (the blur it can learn) (reference: 5).
        rec_features / rec_layers / rec_kernel: the visible-reconstruction CNN (reference: 64, 3, 5).
    """

    def __init__(
        self,
        visible_channels: int = 3,
        features: int = 16,
        layers: int = 2,
        kernel: int = 1,
        synthesis_kernel: int = 5,
        rec_features: int = 16,
        rec_layers: int = 3,
        rec_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.visible_channels = visible_channels
        analysis: list[nn.Module] = []
        width = visible_channels + 1
        for _ in range(layers):
            analysis += [
                nn.Conv2d(width, features, kernel, padding=kernel // 2, padding_mode="replicate"),
                nn.ReLU(),
            ]
            width = features
        self.analysis = nn.Sequential(*analysis)
        self.correction = nn.Conv2d(width, 1, 1)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)
        p = synthesis_kernel // 2
        self.synthesis = nn.Conv2d(1, 1, synthesis_kernel, padding=p, padding_mode="replicate")
        _identity_(self.synthesis)
        rec: list[nn.Module] = []
        width, p = 1, rec_kernel // 2
        for _ in range(rec_layers):
            rec += [
                nn.Conv2d(width, rec_features, rec_kernel, padding=p, padding_mode="replicate"),
                nn.ReLU(),
            ]
            width = rec_features
        rec.append(nn.Conv2d(width, 1, rec_kernel, padding=p, padding_mode="replicate", bias=False))
        self.visible_rec = nn.Sequential(*rec)

    @property
    def receptive_field(self) -> int:
        """Pixels of context each output pixel of x1 sees, for overlap when processing in strips."""
        k = [m.kernel_size[0] for m in (*self.analysis, self.synthesis) if isinstance(m, nn.Conv2d)]
        return 1 + sum(v - 1 for v in k)

    def surface(self, visible: torch.Tensor, init: torch.Tensor) -> torch.Tensor:
        """x1 from the photo (B, C, H, W) and the first guess (B, 1, H, W), both in [0, 1]."""
        if self.visible_channels == 1 and visible.shape[1] == 3:
            visible = luminance(visible)
        features = self.analysis(torch.cat([visible, init], 1))
        return self.synthesis(init + self.correction(features))

    def forward(
        self, xray: torch.Tensor, visible: torch.Tensor, init: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        x1 = self.surface(visible, init)
        return {"x1": x1, "x2": xray - x1, "visible_rec": self.visible_rec(x1)}
