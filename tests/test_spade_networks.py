"""SPADE networks against the NVlabs/SPADE reference configuration: parameter counts, shapes, spectral norm."""

from __future__ import annotations

import pytest
import torch

from underpainting.models.networks.spade import (
    SPADE,
    ConvEncoder,
    MultiscaleDiscriminator,
    NLayerDiscriminator,
    SPADEGenerator,
    SPADEResnetBlock,
    init_weights,
)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_generator_parameter_count_matches_reference():
    # ADE20K in the reference: 150 classes + dont-care = 151 channels, no instance map, ngf 64, normal, no VAE.
    with torch.device("meta"):  # counts only: no memory, no init
        g = SPADEGenerator(semantic_nc=151, ngf=64, num_upsampling_layers="normal")
    assert n_params(g) == 96_492_483
    # Spectral norm keeps its power-iteration vectors as buffers, not parameters.
    assert any(name.endswith("_u") for name, _ in g.named_buffers())


def test_vae_generator_and_encoder_counts():
    # With the encoder the first layer is Linear(z_dim 256, 16 * 64 * 8 * 8) instead of the 3x3 conv on the labels.
    with torch.device("meta"):
        g = SPADEGenerator(151, use_vae=True, z_dim=256, crop_size=256)
        e = ConvEncoder(ngf=64, z_dim=256, input_size=256)
    conv_fc = 151 * 1024 * 9 + 1024
    linear_fc = 256 * 16 * 64 * 64 + 16 * 64 * 64
    assert n_params(g) == 96_492_483 - conv_fc + linear_fc
    # Reference ConvEncoder at 256 px: six bias-free 3x3 convs (64-128-256-512-512-512) and two Linear(8192, 256).
    convs = 9 * (3 * 64 + 64 * 128 + 128 * 256 + 256 * 512 + 512 * 512 + 512 * 512)
    assert n_params(e) == convs + 2 * (8192 * 256 + 256)


def test_discriminator_count_matches_reference_structure():
    # pix2pixHD/SPADE n_layers_D=4 PatchGAN on 151 + 3 channels: first conv with bias, three bias-free spectral
    # instance-norm convs, final 1-channel conv; two scales.
    per_scale = (154 * 64 * 16 + 64) + 64 * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16 + (512 * 16 + 1)
    with torch.device("meta"):
        d = MultiscaleDiscriminator(151, ndf=64, n_layers=4, num_D=2)
    assert n_params(d) == 2 * per_scale


@pytest.mark.parametrize("mode,scale", [("normal", 32), ("more", 64), ("most", 128)])
def test_generator_output_shapes(mode, scale):
    g = SPADEGenerator(semantic_nc=6, ngf=8, num_upsampling_layers=mode)
    seg = torch.zeros(2, 6, scale, 2 * scale)
    seg[:, 1] = 1
    out = g(seg)
    assert out.shape == (2, 3, scale, 2 * scale)
    assert out.abs().max() <= 1
    assert g.scale == scale
    with pytest.raises(ValueError, match="multiple of"):
        g(torch.zeros(1, 6, scale + 8, scale))


def test_vae_generator_uses_z():
    g = SPADEGenerator(semantic_nc=5, ngf=8, use_vae=True, z_dim=16, crop_size=64).eval()
    seg = torch.zeros(1, 5, 64, 64)
    seg[:, 2] = 1
    z1, z2 = torch.randn(1, 16), torch.randn(1, 16)
    assert not torch.allclose(g(seg, z1), g(seg, z2))
    assert torch.allclose(g(seg, z1), g(seg, z1))
    mu, logvar = ConvEncoder(ngf=8, z_dim=16, input_size=64)(torch.rand(3, 3, 64, 64))
    assert mu.shape == logvar.shape == (3, 16)


def test_discriminator_returns_features_per_scale():
    d = MultiscaleDiscriminator(label_nc=6, ndf=8, n_layers=4, num_D=2)
    out = d(torch.randn(2, 9, 64, 64))
    assert len(out) == 2 and all(len(scale) == 5 for scale in out)
    assert out[0][-1].shape[1] == 1 and out[1][-1].shape[-1] < out[0][-1].shape[-1]
    # Spectral norm on every conv but the first and last of each scale; instance norm without affine parameters.
    sn = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d) and hasattr(m, "parametrizations")]
    assert len(sn) == 2 * 3
    assert isinstance(NLayerDiscriminator(9, 8).layers[1][0][1], torch.nn.InstanceNorm2d)


def test_spade_modulates_by_label():
    torch.manual_seed(0)
    spade = SPADE(norm_nc=4, label_nc=3, hidden=8, norm="instance")
    x = torch.randn(1, 4, 8, 8)
    a, b = torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)
    a[:, 0], b[:, 1] = 1, 1
    assert not torch.allclose(spade(x, a), spade(x, b))
    block = SPADEResnetBlock(8, 4, label_nc=3, norm="instance")
    assert block.learned_shortcut and block(torch.randn(2, 8, 16, 16), a.expand(2, -1, -1, -1)).shape == (
        2,
        4,
        16,
        16,
    )


def test_reference_init_reaches_spectral_norm_weights():
    g = SPADEGenerator(semantic_nc=4, ngf=8)  # initialised as the reference in the constructor
    assert init_weights(g, "xavier", 0.02) is g
    w = g.head_0.conv_0.parametrizations.weight.original
    assert w.std() < 0.01  # xavier-normal with gain 0.02 on a 128-channel 3x3 conv: std ~ 0.0008
    assert g.head_0.conv_0.bias.abs().max() == 0
