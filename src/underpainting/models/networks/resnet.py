"""ResNet generator of CycleGAN (Zhu et al. 2017, appendix 7.2; after Johnson et al. 2016):
c7s1-64, d128, d256, 9 x R256, u128, u64, c7s1-3, with reflection padding and instance norm."""

from __future__ import annotations

import torch
from torch import nn

from underpainting.models.networks.norm import Norm, conv_bias, init_weights, norm_layer


class ResnetBlock(nn.Module):
    """Two 3x3 convs with reflection padding and a residual connection."""

    def __init__(self, channels: int, norm: Norm = "instance", dropout: bool = False) -> None:
        super().__init__()
        Norm_, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            Norm_(channels),
            nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), Norm_(channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """Image-to-image generator; fully convolutional, so any size divisible by 4 works."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: Norm = "instance",
        dropout: bool = False,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        Norm_, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            Norm_(ngf),
            nn.ReLU(True),
        ]
        ch = ngf
        for _ in range(2):  # downsampling: d128, d256
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias), Norm_(ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResnetBlock(ch, norm, dropout) for _ in range(n_blocks)]
        for _ in range(2):  # upsampling: u128, u64
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                Norm_(ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.stride = 4
        init_weights(self, init_type, init_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
