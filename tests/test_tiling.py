"""Any-size inference: pad to the stride and crop back; overlapping tiles whose seams do not show."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.seams import seam_gradient_ratio
from underpainting.models.networks.resnet import ResnetGenerator
from underpainting.models.tiling import (
    apply_padded,
    pad_to_multiple,
    run_large,
    shared_instance_norm,
    tile_starts,
    tiled_apply,
)


def smooth_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(1, 3, 6, 6, generator=g) * 2 - 1, size=(h, w), mode="bicubic").clamp(
        -1, 1
    )


def small_norm_net() -> nn.Module:
    """Smooth in, smooth out, with an instance norm: per-tile statistics would show as steps at the seams."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.ReflectionPad2d(2), nn.Conv2d(3, 8, 5), nn.InstanceNorm2d(8), nn.ReLU(),
        nn.ReflectionPad2d(2), nn.Conv2d(8, 3, 5), nn.Tanh(),
    ).eval()  # fmt: skip


@pytest.mark.parametrize("size", [(250, 190), (33, 47), (64, 64)])
def test_pad_to_multiple_and_crop_back(size):
    x = smooth_image(*size)
    for m in (4, 32):
        p = pad_to_multiple(x, m)
        assert p.shape[-2] % m == 0 and p.shape[-1] % m == 0
        assert torch.equal(p[..., : size[0], : size[1]], x)  # the image itself is untouched
    net = ResnetGenerator(ngf=4, n_blocks=1).eval()
    with torch.no_grad():
        y = apply_padded(net, x, net.stride)
    assert y.shape == x.shape


def test_pad_integer_label_maps_keep_dtype():
    ids = torch.randint(0, 5, (1, 1, 30, 30))
    p = pad_to_multiple(ids, 32)
    assert p.dtype == ids.dtype and p.shape[-2:] == (32, 32)


def test_tile_starts_cover_the_axis():
    for length, tile, overlap in ((260, 96, 32), (96, 96, 32), (1000, 512, 128), (97, 96, 8)):
        starts = tile_starts(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile == max(length, tile)
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(300, 64, 64)


def test_tiled_matches_untiled_and_seams_are_invisible():
    net, x = small_norm_net(), smooth_image(200, 260)
    with torch.no_grad():
        full = net(x)
        blended = run_large(net, x, net=net, tile=96, overlap=32, multiple=1)
        naive = tiled_apply(net, x, 96, 0, 1, blend=False)  # hard edges, per-tile statistics
    assert blended.shape == full.shape
    # Agreement: exact away from tile borders, close everywhere.
    assert (blended - full).abs()[..., 40:56, 40:56].max() < 1e-5
    assert (blended - full).abs().max() < 0.01
    # Seams: the gradient across the blended zones is the untiled one's; naive tiles leave hard steps.
    seam_cols = [c for s in tile_starts(260, 96, 32)[1:] for c in range(s, s + 32)]
    ratio = seam_gradient_ratio(blended, full, seam_cols)
    naive_ratio = seam_gradient_ratio(naive, full, tile_starts(260, 96, 0)[1:])
    assert 0.95 < ratio < 1.05, ratio
    assert naive_ratio > 3.0, naive_ratio


def test_shared_statistics_are_needed_for_instance_norm():
    net, x = small_norm_net(), smooth_image(200, 260)
    with torch.no_grad():
        full = net(x)
        own_stats = tiled_apply(net, x, 96, 32, 1)
        shared = run_large(net, x, net=net, tile=96, overlap=32, multiple=1)
    assert (shared - full).abs().mean() < 0.1 * (own_stats - full).abs().mean()


def test_shared_instance_norm_restores_the_network():
    net, x = small_norm_net(), smooth_image(64, 64)
    with torch.no_grad():
        before = net(x)
        with shared_instance_norm(net) as state:
            net(x)
            assert len(state.stats) == 1
            half = net(x[..., :32, :32])  # normalised with the whole image's statistics
        after = net(x)
    assert torch.equal(before, after)
    assert torch.allclose(half[..., :28, :28], before[..., :28, :28], atol=1e-5)  # away from its border


def test_resnet_generator_tiled_any_size():
    """The CycleGAN generator on a size that is not a multiple of its stride, tiled with stats from a downscale."""
    torch.manual_seed(0)
    net = ResnetGenerator(ngf=4, n_blocks=1).eval()
    x = smooth_image(150, 203)
    with torch.no_grad():
        full = apply_padded(net, x, 4)
        tiled = run_large(net, x, net=net, tile=96, overlap=32, multiple=4, stats_max_side=1024)
        approx = run_large(net, x, net=net, tile=96, overlap=32, multiple=4, stats_max_side=100)
    assert tiled.shape == full.shape == x.shape
    assert (tiled - full).abs().mean() < 0.01
    assert (approx - full).abs().mean() < 0.05  # statistics from a half-size pass are close


def test_fixed_size_networks_get_padded_tiles():
    seen = []

    def fn(t):
        seen.append(tuple(t.shape[-2:]))
        return t * 2

    x = smooth_image(50, 70)
    y = tiled_apply(fn, x, 64, 16, multiple=32, fixed_size=True)
    assert set(seen) == {(64, 64)} and torch.allclose(y, x * 2)
    seen.clear()
    y = tiled_apply(fn, smooth_image(100, 150), 64, 16, multiple=32, fixed_size=True)
    assert set(seen) == {(64, 64)} and y.shape[-2:] == (100, 150)
