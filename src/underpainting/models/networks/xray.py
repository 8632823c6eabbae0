"""The mixed X-ray separation network of Pu et al. 2022 ("Mixed X-Ray Image Separation for Artworks With Concealed
Designs", IEEE TIP 31; code jjhuangcs/Mixed-X-Ray-Image-Separation, `XraySepNet_model.py`).

Analysis sub-network: K unrolled iterations of learned coupled ISTA (LCISTA) for

    min  1/2 ||x - Gamma y1 - Gamma y2||^2 + 1/2 ||g - Theta y1||^2 + sum_i (1/2 ||y_i - Phi z_i||^2 + l_i ||z_i||_1)
         + coupled wavelet sparsity (a detail coefficient of one component shrinks where the other's is large)

with x the mixed X-ray, g the visible photo (side information that only the surface part y1 must explain), z_i
convolutional sparse codes over a dictionary Phi. Synthesis sub-network: one linear convolution maps each y_i to its
X-ray component x_i; a small CNN maps x1 back to the visible image (the visible-reconstruction loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def soft_threshold(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """sign(x) max(|x| - t, 0): the proximal operator of the l1 norm."""
    return torch.sign(x) * F.relu(x.abs() - t)


class UndecimatedHaar(nn.Module):
    """One level of the stride-1 (undecimated) Haar transform (the reference's `wavelet(stride=1)`): per channel 4
    bands (LL, LH, HL, HH) of the 2x2 window at each pixel. Each window's 4 coefficients give its pixels back exactly
    (orthonormal filters); the inverse averages the windows covering each pixel, so inverse(forward(x)) == x."""

    def __init__(self) -> None:
        super().__init__()
        lo = torch.tensor([1.0, 1.0]) / 2**0.5
        hi = torch.tensor([-1.0, 1.0]) / 2**0.5
        bank = torch.stack([torch.outer(a, b) for a in (lo, hi) for b in (lo, hi)])[:, None]
        self.register_buffer("bank", bank, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = F.conv2d(F.pad(x.reshape(b * c, 1, h, w), (0, 1, 0, 1), mode="replicate"), self.bank)
        return y.reshape(b, c * 4, h, w)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        b, c4, h, w = y.shape
        x = F.conv_transpose2d(y.reshape(b * c4 // 4, 4, h, w), self.bank)[..., :h, :w]
        cover = F.conv_transpose2d(y.new_ones(1, 1, h, w), y.new_ones(1, 1, 2, 2))[..., :h, :w]
        return x.reshape(b, c4 // 4, h, w) / cover


def _dirac(w: torch.Tensor) -> None:
    """Identity kernel (summed over input channels when out != in), so a mapping starts as 'pass through'."""
    with torch.no_grad():
        w.zero_()
        k = w.shape[-1] // 2
        w[:, :, k, k] = 1.0 / w.shape[1]


class CoupledISTALayer(nn.Module):
    """One LCISTA iteration (reference `unfoldSepLayer`): sparse-code steps for z1, z2, then gradient steps for y2
    and y1 each followed by the coupled wavelet shrinkage against the other component."""

    def __init__(self, channels: int, codes: int, side_channels: int, kernel: int, init_std: float = 1e-3) -> None:
        super().__init__()
        p = kernel // 2

        def conv(i: int, o: int) -> nn.Conv2d:
            return nn.Conv2d(i, o, kernel, padding=p, bias=False)

        self.phi_analysis, self.phi = conv(channels, codes), conv(codes, channels)  # Phi^T (learned), Phi
        self.gamma_t, self.gamma = conv(channels, channels), conv(channels, channels)  # mixing model x ~ Gamma y
        self.theta_t, self.theta = conv(side_channels, channels), conv(channels, side_channels)  # g ~ Theta y1
        self.code_threshold = nn.ParameterList([nn.Parameter(torch.full((codes,), 0.1)) for _ in range(2)])
        self.wavelet_threshold = nn.Parameter(torch.full((channels,), 0.4))  # reference: 0.1 * 4
        self.softplus = nn.Softplus(beta=20)  # keeps thresholds positive (reference)
        self.haar = UndecimatedHaar()
        for c in (self.gamma_t, self.theta_t, self.phi_analysis):  # steps start small: the input passes through
            nn.init.normal_(c.weight, std=init_std)
        for c in (self.gamma, self.theta):
            _dirac(c.weight)

    def _code(self, y: torch.Tensor, z: torch.Tensor, i: int) -> torch.Tensor:
        z = z + self.phi_analysis(y - self.phi(z))
        return soft_threshold(z, self.softplus(self.code_threshold[i]).view(1, -1, 1, 1))

    def _couple(self, y: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        t = self.softplus(self.wavelet_threshold).repeat_interleave(4).view(1, -1, 1, 1)
        wy, wo = self.haar(y), self.haar(other)
        return self.haar.inverse(soft_threshold(wy, (t * wo).abs()))

    def forward(self, x, g, y1, y2, z1, z2):
        z1, z2 = self._code(y1, z1, 0), self._code(y2, z2, 1)
        mix = lambda a, b: self.gamma_t(x - self.gamma(a) - self.gamma(b))  # noqa: E731
        # Gradient steps: data fidelity, (for y1) the side information, and the pull towards the sparse synthesis
        # Phi z. The reference adds (y - Phi z), an ascent step; we take the descent step (Phi z - y).
        y2 = y2 + mix(y1, y2) + (self.phi(z2) - y2)
        y2 = self._couple(y2, y1)
        y1 = y1 + mix(y1, y2) + self.theta_t(g - self.theta(y1)) + (self.phi(z1) - y1)
        y1 = self._couple(y1, y2)
        return y1, y2, z1, z2


class XRaySeparationNet(nn.Module):
    """LCISTA analysis + linear synthesis (Pu et al. 2022). `forward(xray, visible, init)` -> dict with the surface
    and concealed X-ray components `x1`, `x2` and the visible image reconstructed from x1 `visible_rec`.

    Args:
        layers / kernel / codes: unrolled iterations, filter size, sparse-code channels (reference: 5, 5, 64).
        visible_channels: channels of the side information g (reference: 1, the photo's luminance; 3: RGB).
        rec_features / rec_layers: width and depth of the visible-reconstruction CNN (reference: 64, 3).
    """

    def __init__(
        self,
        layers: int = 5,
        kernel: int = 5,
        codes: int = 64,
        visible_channels: int = 1,
        rec_features: int = 64,
        rec_layers: int = 3,
    ) -> None:
        super().__init__()
        self.codes, self.visible_channels = codes, visible_channels
        self.analysis = nn.ModuleList(
            CoupledISTALayer(1, codes, visible_channels, kernel) for _ in range(layers)
        )
        p = kernel // 2
        self.synthesis = nn.Conv2d(1, 1, kernel, padding=p)  # shared by both components (reference `recon_xr`)
        _dirac(self.synthesis.weight)
        nn.init.zeros_(self.synthesis.bias)
        rec: list[nn.Module] = []
        width = 1
        for _ in range(rec_layers):
            rec += [nn.Conv2d(width, rec_features, kernel, padding=p), nn.ReLU(inplace=True)]
            width = rec_features
        rec.append(nn.Conv2d(width, visible_channels, kernel, padding=p, bias=False))
        self.visible_rec = nn.Sequential(*rec)

    def forward(self, xray: torch.Tensor, visible: torch.Tensor, init: torch.Tensor) -> dict[str, torch.Tensor]:
        """xray, init: (B, 1, H, W); visible: (B, visible_channels, H, W). `init` is the first surface estimate."""
        b, _, h, w = xray.shape
        z1 = z2 = xray.new_zeros(b, self.codes, h, w)
        y1, y2 = init, xray - init
        for layer in self.analysis:
            y1, y2, z1, z2 = layer(xray, visible, y1, y2, z1, z2)
        x1, x2 = self.synthesis(y1), self.synthesis(y2)
        return {"x1": x1, "x2": x2, "visible_rec": self.visible_rec(x1)}
