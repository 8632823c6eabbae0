"""SPADE / GauGAN networks (Park et al., "Semantic Image Synthesis with Spatially-Adaptive Normalization", CVPR 2019),
following the NVlabs/SPADE reference architecture so that parameter counts and shapes match it.

- `SPADE`: parameter-free normalisation, then a per-pixel scale and shift predicted from the label map.
- `SPADEResnetBlock`: norm -> LeakyReLU -> conv, twice, with a learned (SPADE-normalised 1x1) shortcut when the width
  changes; spectral norm on the convs.
- `SPADEGenerator`: starts from the label map downsampled to 1/32 (or 1/64, 1/128) of the output, or from a z vector
  when an encoder gives the style; then SPADE blocks with nearest-neighbour upsampling, tanh output.
- `ConvEncoder`: image -> (mu, logvar) of the style vector z (the VAE variant, Sec. 3.3).
- `NLayerDiscriminator` / `MultiscaleDiscriminator`: pix2pixHD-style PatchGANs at two scales with spectral instance
  norm, returning every layer's features for the feature-matching loss.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

ParamFreeNorm = Literal["batch", "instance"]
NUM_UP_LAYERS = {"normal": 5, "more": 6, "most": 7}  # reference option --num_upsampling_layers


def _param_free_norm(kind: str, channels: int) -> nn.Module:
    # The reference default is synchronised batch norm ('spectralspadesyncbatch3x3'); plain BatchNorm2d here is
    # converted to SyncBatchNorm by the LightningModule under multi-GPU DDP.
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    raise ValueError(f"param-free norm must be 'batch' or 'instance', got {kind!r}")


def _maybe_sn(layer: nn.Module, spectral: bool) -> nn.Module:
    return spectral_norm(layer) if spectral else layer


class SPADE(nn.Module):
    """out = norm(x) * (1 + gamma(seg)) + beta(seg), gamma/beta from a shared conv+ReLU embedding (Eq. 1)."""

    def __init__(
        self,
        norm_nc: int,
        label_nc: int,
        hidden: int = 128,
        kernel_size: int = 3,
        norm: ParamFreeNorm = "batch",
    ) -> None:
        super().__init__()
        self.param_free_norm = _param_free_norm(norm, norm_nc)
        pad = kernel_size // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        normalised = self.param_free_norm(x)
        seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(seg)
        return normalised * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """Residual block with SPADE before each conv; fmiddle = min(fin, fout) as in the reference."""

    def __init__(
        self,
        fin: int,
        fout: int,
        label_nc: int,
        spectral: bool = True,
        norm: ParamFreeNorm = "batch",
        hidden: int = 128,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = _maybe_sn(nn.Conv2d(fin, fmiddle, 3, padding=1), spectral)
        self.conv_1 = _maybe_sn(nn.Conv2d(fmiddle, fout, 3, padding=1), spectral)
        self.norm_0 = SPADE(fin, label_nc, hidden, kernel_size, norm)
        self.norm_1 = SPADE(fmiddle, label_nc, hidden, kernel_size, norm)
        if self.learned_shortcut:
            self.conv_s = _maybe_sn(nn.Conv2d(fin, fout, 1, bias=False), spectral)
            self.norm_s = SPADE(fin, label_nc, hidden, kernel_size, norm)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


class SPADEGenerator(nn.Module):
    """Label map (B, semantic_nc, H, W) [+ z (B, z_dim)] -> image (B, 3, H, W) in [-1, 1].

    H and W must be multiples of 2**n (n = 5, 6, 7 for normal/more/most). Without the encoder the first feature map
    is the label map resized to (H, W) / 2**n, so any such size works; with it, `crop_size` fixes the z projection.
    """

    def __init__(
        self,
        semantic_nc: int,
        ngf: int = 64,
        num_upsampling_layers: Literal["normal", "more", "most"] = "normal",
        use_vae: bool = False,
        z_dim: int = 256,
        crop_size: int | tuple[int, int] = 256,
        spectral: bool = True,
        norm: ParamFreeNorm = "batch",
        spade_hidden: int = 128,
        spade_kernel_size: int = 3,
        output_nc: int = 3,
        init_type: str = "xavier",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if num_upsampling_layers not in NUM_UP_LAYERS:
            raise ValueError(
                f"num_upsampling_layers must be one of {list(NUM_UP_LAYERS)}, got {num_upsampling_layers!r}"
            )
        self.semantic_nc, self.ngf, self.z_dim, self.use_vae = semantic_nc, ngf, z_dim, use_vae
        self.num_upsampling_layers = num_upsampling_layers
        self.scale = 2 ** NUM_UP_LAYERS[num_upsampling_layers]
        h, w = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
        self.crop_size = (h, w)
        self.sh, self.sw = h // self.scale, w // self.scale
        nf = ngf

        def block(fin: int, fout: int) -> SPADEResnetBlock:
            return SPADEResnetBlock(fin, fout, semantic_nc, spectral, norm, spade_hidden, spade_kernel_size)

        if use_vae:
            if self.sh < 1 or self.sw < 1:
                raise ValueError(
                    f"crop_size {self.crop_size} is smaller than the generator's scale {self.scale}"
                )
            self.fc = nn.Linear(z_dim, 16 * nf * self.sh * self.sw)
        else:
            self.fc = nn.Conv2d(semantic_nc, 16 * nf, 3, padding=1)
        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, nf)
        final_nc = nf
        if num_upsampling_layers == "most":
            self.up_4 = block(nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, output_nc, 3, padding=1)
        init_weights(self, init_type, init_gain)

    def _check_size(self, seg: torch.Tensor) -> None:
        h, w = seg.shape[2:]
        if h % self.scale or w % self.scale:
            raise ValueError(
                f"label map size {h}x{w} must be a multiple of {self.scale} "
                f"(num_upsampling_layers={self.num_upsampling_layers!r}); crop or resize it"
            )
        if self.use_vae and (h, w) != self.crop_size:
            raise ValueError(f"with the style encoder the label map must be {self.crop_size}, got {h}x{w}")
        if seg.shape[1] != self.semantic_nc:
            raise ValueError(
                f"label map has {seg.shape[1]} channels, the generator expects {self.semantic_nc}"
            )

    def forward(self, seg: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        self._check_size(seg)
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
        if self.use_vae:
            if z is None:
                z = torch.randn(seg.shape[0], self.z_dim, device=seg.device, dtype=seg.dtype)
            x = self.fc(z).view(-1, 16 * self.ngf, self.sh, self.sw)
        else:
            h, w = seg.shape[2:]
            x = self.fc(F.interpolate(seg, size=(h // self.scale, w // self.scale), mode="nearest"))
        x = self.head_0(x, seg)
        x = self.G_middle_0(up(x), seg)
        if self.num_upsampling_layers in ("more", "most"):
            x = up(x)
        x = self.G_middle_1(x, seg)
        x = self.up_0(up(x), seg)
        x = self.up_1(up(x), seg)
        x = self.up_2(up(x), seg)
        x = self.up_3(up(x), seg)
        if self.num_upsampling_layers == "most":
            x = self.up_4(up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


def _sn_instance_conv(
    cin: int, cout: int, kernel_size: int, stride: int, padding: int, spectral: bool
) -> nn.Sequential:
    """The reference's 'spectralinstance' layer: the conv loses its bias (the norm removes it anyway)."""
    conv = _maybe_sn(nn.Conv2d(cin, cout, kernel_size, stride, padding, bias=False), spectral)
    return nn.Sequential(conv, nn.InstanceNorm2d(cout, affine=False))


class ConvEncoder(nn.Module):
    """Image -> (mu, logvar) of the style code: stride-2 3x3 convs with spectral instance norm down to 4x4, two FCs.

    The reference always resizes to 256 px and uses 6 convs (5 below 256, which breaks its FC size); here the image
    is resized to `input_size` and the number of convs is log2(input_size / 4), so 256 gives the reference network.
    """

    def __init__(
        self,
        ngf: int = 64,
        z_dim: int = 256,
        input_size: int = 256,
        spectral: bool = True,
        init_type: str = "xavier",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        n = int(round(math.log2(input_size / 4)))
        if 4 * 2**n != input_size or n < 1:
            raise ValueError(f"encoder input_size must be 4 * 2**k (e.g. 64, 128, 256), got {input_size}")
        self.input_size = input_size
        chans = [3] + [ngf * min(2**i, 8) for i in range(n)]
        self.layers = nn.ModuleList(
            _sn_instance_conv(chans[i], chans[i + 1], 3, 2, 1, spectral) for i in range(n)
        )
        self.fc_mu = nn.Linear(chans[-1] * 16, z_dim)
        self.fc_var = nn.Linear(chans[-1] * 16, z_dim)
        self.z_dim = z_dim
        init_weights(self, init_type, init_gain)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[2:] != (self.input_size, self.input_size):
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
        x = x.flatten(1)
        return self.fc_mu(x), self.fc_var(x)


class NLayerDiscriminator(nn.Module):
    """One PatchGAN of the multi-scale D: 4x4 convs, stride 2 except the last two, spectral instance norm.

    Returns the output of every layer (the last is the real/fake map) for the feature-matching loss.
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 4, spectral: bool = True) -> None:
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(input_nc, ndf, 4, 2, 2), nn.LeakyReLU(0.2))]
        nf = ndf
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            layers.append(
                nn.Sequential(_sn_instance_conv(nf_prev, nf, 4, stride, 2, spectral), nn.LeakyReLU(0.2))
            )
        layers.append(nn.Sequential(nn.Conv2d(nf, 1, 4, 1, 2)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """`num_D` PatchGANs on the (label map, image) concatenation at full, 1/2, 1/4 ... resolution (pix2pixHD).

    `label_nc` is the generator's semantic_nc (classes [+ dont-care] [+ instance edges]); the input has
    label_nc + image_nc channels.
    """

    def __init__(
        self,
        label_nc: int,
        image_nc: int = 3,
        ndf: int = 64,
        n_layers: int = 4,
        num_D: int = 2,
        spectral: bool = True,
        init_type: str = "xavier",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        self.label_nc, self.input_nc = label_nc, label_nc + image_nc
        self.discriminators = nn.ModuleList(
            NLayerDiscriminator(self.input_nc, ndf, n_layers, spectral) for _ in range(num_D)
        )
        init_weights(self, init_type, init_gain)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outputs = []
        for i, d in enumerate(self.discriminators):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(d(x))
        return outputs


def init_weights(net: nn.Module, init_type: str = "xavier", gain: float = 0.02) -> nn.Module:
    """The reference's init (--init_type xavier --init_variance 0.02): conv/linear weights xavier-normal with gain
    0.02, biases 0, batch-norm weights N(1, gain). Spectral-normed weights are initialised through their original."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d | nn.InstanceNorm2d):
            if m.weight is not None:
                nn.init.normal_(m.weight, 1.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d | nn.Linear | nn.ConvTranspose2d):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            with torch.no_grad():
                if init_type == "xavier":
                    nn.init.xavier_normal_(weight, gain=gain)
                elif init_type == "normal":
                    nn.init.normal_(weight, 0.0, gain)
                elif init_type == "kaiming":
                    nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
                elif init_type == "orthogonal":
                    nn.init.orthogonal_(weight, gain=gain)
                elif init_type != "none":
                    raise ValueError(f"unknown init_type {init_type!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net
