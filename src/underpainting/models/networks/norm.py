"""Weight init and the norm-layer choice shared by the pix2pix/CycleGAN networks."""

from __future__ import annotations

import functools
from typing import Literal

from torch import nn

Norm = Literal["instance", "batch", "none"]


def norm_layer(kind: Norm) -> type[nn.Module] | functools.partial:
    """Instance norm without affine or running stats (CycleGAN), batch norm with both (pix2pix), or nothing."""
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"norm must be 'instance', 'batch' or 'none', got {kind!r}")


def conv_bias(kind: Norm) -> bool:
    """Whether the convs before a norm carry a bias, as in the reference (`use_bias = norm_layer == InstanceNorm2d`):
    yes before instance norm (affine-free, so nothing else shifts), no before batch norm (its shift replaces it),
    and no with `norm=none` too (the reference's test is on the layer type, and an Identity is not InstanceNorm2d)."""
    return kind == "instance"


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Zhu et al. 2017 / Isola et al. 2017 init: conv weights ~ N(0, 0.02), biases 0, BN weights ~ N(1, 0.02)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if init_type == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif init_type == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=gain)
            else:
                raise ValueError(
                    f"init_type must be normal, xavier, kaiming or orthogonal, got {init_type!r}"
                )
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net
