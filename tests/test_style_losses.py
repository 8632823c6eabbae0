"""Style-transfer losses and colour control against direct computations."""

from __future__ import annotations

import pytest
import torch

from underpainting.data.colour import (
    luminance_image,
    match_colour,
    match_luminance,
    rgb_to_yiq,
    transfer_luminance,
    yiq_to_rgb,
)
from underpainting.models.losses.style import (
    ContentLoss,
    GramStyleLoss,
    GuidedStyleLoss,
    TotalVariationLoss,
    default_layer_weights,
    gram_matrix,
    guided_gram_matrix,
    guides_at_layers,
)


def test_gram_matrix_matches_direct_sum():
    torch.manual_seed(0)
    f = torch.randn(2, 4, 3, 5)
    g = gram_matrix(f)
    for b in range(2):
        for i in range(4):
            for j in range(4):
                direct = sum(float(f[b, i, y, x] * f[b, j, y, x]) for y in range(3) for x in range(5)) / 15
                assert abs(float(g[b, i, j]) - direct) < 1e-5


def test_gram_matrix_is_fp32_under_bf16_autocast():
    f = torch.randn(1, 8, 16, 16).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = gram_matrix(f)
    assert g.dtype == torch.float32
    torch.testing.assert_close(g, gram_matrix(f.float()))


def test_guided_gram_is_the_mean_over_the_region():
    torch.manual_seed(0)
    f = torch.randn(1, 3, 6, 6)
    mask = torch.zeros(1, 6, 6)
    mask[:, :2, :] = 1  # 12 positions
    vecs = f[0][:, mask[0].bool()]  # (3, 12)
    torch.testing.assert_close(guided_gram_matrix(f, mask)[0], vecs @ vecs.T / 12)
    # soft guide: weights w², normalised by Σ w²
    soft = torch.rand(1, 6, 6)
    w2 = soft[0].flatten() ** 2
    flat = f[0].reshape(3, -1)
    torch.testing.assert_close(guided_gram_matrix(f, soft)[0], (flat * w2) @ flat.T / w2.sum())
    # a guide of ones is the plain Gram matrix; an empty guide gives zeros
    torch.testing.assert_close(guided_gram_matrix(f, torch.ones(1, 6, 6)), gram_matrix(f))
    assert guided_gram_matrix(f, torch.zeros(1, 6, 6)).abs().max() == 0


def test_guides_at_layers_sizes_and_erosion():
    guides = torch.zeros(1, 2, 64, 64)
    guides[:, 0, :32] = 1
    guides[:, 1, 32:] = 1
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_2"]
    simple = guides_at_layers(guides, layers, "vgg19", "simple")
    assert [tuple(g.shape[-2:]) for g in simple.values()] == [(64, 64), (32, 32), (16, 16), (8, 8)]
    torch.testing.assert_close(
        simple["relu3_1"].sum(1), torch.ones(1, 16, 16)
    )  # area resize keeps a partition
    inside = guides_at_layers(guides, layers, "vgg19", "inside")
    dilated = guides_at_layers(guides, layers, "vgg19", "all")
    for name in layers:
        assert (inside[name] <= simple[name].ceil()).all() and (dilated[name] >= simple[name].floor()).all()
    # eroded guides leave a border between regions that belongs to neither; dilated ones overlap there
    assert (inside["relu3_1"].sum(1) == 0).any() and (dilated["relu3_1"].sum(1) == 2).any()
    with pytest.raises(ValueError, match="guide mode"):
        guides_at_layers(guides, layers, mode="erode")


def test_default_layer_weights_are_inverse_squared_channels():
    w = default_layer_weights(["relu1_1", "relu3_1", "conv5_1"])
    assert w == {"relu1_1": 1 / 64**2, "relu3_1": 1 / 256**2, "conv5_1": 1 / 512**2}


def test_content_and_gram_losses():
    torch.manual_seed(0)
    a = {"l1": torch.randn(1, 4, 8, 8), "l2": torch.randn(1, 6, 4, 4)}
    b = {"l1": torch.randn(1, 4, 8, 8), "l2": torch.randn(1, 6, 4, 4)}
    content = ContentLoss({"l1": 2.0})
    content.set_target(a)
    assert content(a) == 0
    torch.testing.assert_close(content(b), 2 * ((a["l1"] - b["l1"]) ** 2).mean())

    style = GramStyleLoss({"l1": 1.0, "l2": 0.5})
    style.set_target([a])
    assert float(style(a)) == 0 and float(style(b)) > 0
    # blending two styles: the target is the weighted mean of their Gram matrices
    style.set_target([a, b], weights=[3.0, 1.0])
    torch.testing.assert_close(style.targets["l2"], 0.75 * gram_matrix(a["l2"]) + 0.25 * gram_matrix(b["l2"]))
    with pytest.raises(ValueError, match="blend weights"):
        style.set_target([a, b], weights=[1.0])


def test_guided_style_loss_zero_at_target_and_region_weights():
    torch.manual_seed(0)
    f = {"l": torch.randn(1, 3, 8, 8)}
    guides = torch.zeros(1, 2, 8, 8)
    guides[:, 0, :4] = 1
    guides[:, 1, 4:] = 1
    targets = {"l": torch.stack([guided_gram_matrix(f["l"], guides[:, r])[0] for r in range(2)])}
    loss = GuidedStyleLoss({"l": 1.0})
    loss.set_target(targets, {"l": guides}, [1.0, 1.0])
    assert float(loss(f)) < 1e-10
    other = {"l": torch.randn(1, 3, 8, 8)}
    full = float(loss(other))
    loss.set_target(targets, {"l": guides}, [1.0, 0.0])  # switch region 1 off
    only0 = float(loss(other))
    assert 0 < only0 < full
    with pytest.raises(ValueError, match="region weights"):
        loss.set_target(targets, {"l": guides}, [1.0])


def test_total_variation():
    tv = TotalVariationLoss()
    assert float(tv(torch.ones(1, 3, 8, 8))) == 0
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 8, 8)
    torch.testing.assert_close(tv(ramp), torch.tensor(1.0))  # dx = 1 everywhere, dy = 0


def test_yiq_round_trip_and_luminance():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    torch.testing.assert_close(yiq_to_rgb(rgb_to_yiq(x)), x, atol=1e-5, rtol=0)
    grey = luminance_image(x)
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    white = torch.ones(1, 3, 2, 2)
    torch.testing.assert_close(rgb_to_yiq(white)[:, 0], torch.ones(1, 2, 2))


def test_transfer_luminance_keeps_content_chroma_and_output_luminance():
    torch.manual_seed(0)
    content = (torch.rand(1, 3, 16, 16) * 0.6 - 0.3).clamp(-1, 1)  # mid-range colours: no clamping below
    stylised = luminance_image(torch.rand(1, 3, 16, 16) * 0.6 - 0.3)
    out = transfer_luminance(stylised, content)
    yiq_out, yiq_c, yiq_s = rgb_to_yiq(out), rgb_to_yiq(content), rgb_to_yiq(stylised)
    torch.testing.assert_close(yiq_out[:, 1:], yiq_c[:, 1:], atol=1e-4, rtol=0)
    torch.testing.assert_close(yiq_out[:, :1], yiq_s[:, :1], atol=1e-4, rtol=0)


def test_match_luminance_moments():
    torch.manual_seed(0)
    style, content = torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16) * 0.4
    y = rgb_to_yiq(match_luminance(style, content))[:, 0]
    yc = rgb_to_yiq(content)[:, 0]
    assert abs(float(y.mean() - yc.mean())) < 1e-3 and abs(float(y.std() - yc.std())) < 1e-3


@pytest.mark.parametrize("method", ["chol", "pca", "sym", "histogram"])
def test_match_colour_moves_style_to_content_statistics(method):
    torch.manual_seed(0)
    style = torch.rand(1, 3, 24, 24) * 0.8 - 0.4
    content = torch.stack(
        [torch.rand(24, 24) * 0.3 + 0.2, torch.rand(24, 24) * 0.5 - 0.6, torch.rand(24, 24) * 0.2]
    )[None]
    out = match_colour(style, content, method)
    assert out.shape == style.shape
    for stat in (lambda t: t.mean(dim=(2, 3)), lambda t: torch.cov(t[0].reshape(3, -1))):
        before = (stat(style) - stat(content)).abs().max()
        after = (stat(out) - stat(content)).abs().max()
        assert after < 0.1 * before
    if method == "histogram":  # exact per-channel histogram: same sorted values
        torch.testing.assert_close(out[0, 1].flatten().sort().values, content[0, 1].flatten().sort().values)
    with pytest.raises(ValueError, match="colour match"):
        match_colour(style, content, "lab")
