"""PatchGAN discriminator (Isola et al. 2017, section 3.2.2; Zhu et al. 2017, appendix 7.2): C64-C128-C256-C512,
a 1-channel map of real/fake scores; with `n_layers` 3 each score sees a 70x70 patch."""

from __future__ import annotations

import torch
from torch import nn

from underpainting.models.networks.norm import Norm, conv_bias, init_weights, norm_layer


class NLayerDiscriminator(nn.Module):
    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: Norm = "instance",
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        Norm_, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        ch = ndf
        for n in range(1, n_layers + 1):  # the last of these keeps stride 1
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ch, out, 4, stride=stride, padding=1, bias=bias),
                Norm_(out),
                nn.LeakyReLU(0.2, True),
            ]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        init_weights(self, init_type, init_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
