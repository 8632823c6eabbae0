"""Architectures match the reference implementation: parameter counts, output shapes, initialisation."""

import pytest
import torch

from underpainting.models.networks.patchgan import NLayerDiscriminator
from underpainting.models.networks.resnet import ResnetGenerator
from underpainting.models.networks.unet import UnetGenerator


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_cyclegan_defaults_match_reference_parameter_counts():
    # junyanz/pytorch-CycleGAN-and-pix2pix prints these for --model cycle_gan with default options.
    assert n_params(ResnetGenerator()) == 11_378_179
    assert n_params(NLayerDiscriminator()) == 2_764_737


def test_pix2pix_defaults_match_reference_parameter_counts():
    assert n_params(UnetGenerator(norm="batch", dropout=True)) == 54_413_955
    assert n_params(NLayerDiscriminator(in_channels=6, norm="batch")) == 2_768_705


@pytest.mark.parametrize("size", [64, 96])
def test_resnet_generator_keeps_size_and_range(size):
    g = ResnetGenerator(ngf=8, n_blocks=2)
    y = g(torch.randn(2, 3, size, size) * 3)
    assert y.shape == (2, 3, size, size)
    assert y.abs().max() <= 1.0


@pytest.mark.parametrize(("num_downs", "size"), [(7, 128), (8, 256)])
def test_unet_shapes(num_downs, size):
    g = UnetGenerator(num_downs=num_downs, ngf=4, norm="batch")
    assert g(torch.randn(2, 3, size, size)).shape == (2, 3, size, size)


def test_patchgan_receptive_field_gives_30x30_map_at_256():
    assert NLayerDiscriminator(ndf=8)(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    assert NLayerDiscriminator(ndf=8, n_layers=5)(torch.randn(1, 3, 256, 256)).shape == (1, 1, 6, 6)


def test_init_is_normal_0_002():
    torch.manual_seed(0)
    w = torch.cat([m.weight.flatten() for m in ResnetGenerator().modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.mean().item()) < 1e-3
    assert w.std().item() == pytest.approx(0.02, rel=0.02)
    biases = [
        m.bias for m in ResnetGenerator().modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None
    ]
    assert all(torch.all(b == 0) for b in biases)


def test_instance_norm_has_no_affine_or_running_stats():
    norms = [
        m for m in ResnetGenerator(ngf=8, n_blocks=1).modules() if isinstance(m, torch.nn.InstanceNorm2d)
    ]
    assert norms and all(not m.affine and not m.track_running_stats for m in norms)


def test_bad_norm_name_is_a_clear_error():
    with pytest.raises(ValueError, match="norm must be"):
        ResnetGenerator(norm="spectralinstance")


def test_norm_none_convs_have_no_bias_as_in_the_reference():
    """Before: norm=none kept conv biases; the reference's `use_bias = norm_layer == InstanceNorm2d` drops them
    (its first/last generator convs and the discriminator's first/last keep theirs)."""
    assert n_params(ResnetGenerator(norm="none")) == 11_378_179 - (64 + 128 + 256 + 9 * 2 * 256 + 128 + 64)
    assert n_params(NLayerDiscriminator(norm="none")) == 2_764_737 - (128 + 256 + 512)
