"""X-ray workflow without learning: the simulator, reading 8/16-bit and mosaic X-rays, registration, the acquisition
artefact removals, the regression baseline, and the errors bad inputs give."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ROOT
from underpainting.data.colour import luminance
from underpainting.data.labels import LabelSet
from underpainting.data.synthetic import SyntheticLandscapes
from underpainting.data.xray.artefacts import remove_bars, remove_seams, remove_weave
from underpainting.data.xray.baseline import regression_baseline
from underpainting.data.xray.io import load_mosaic, load_xray, save_grey
from underpainting.data.xray.registration import (
    auto_register,
    fit_transform,
    register_visible,
    similarity,
    warp,
)
from underpainting.data.xray.simulator import (
    LeadWhiteResponse,
    PlateSeams,
    StretcherBars,
    Weave,
    XRaySimulator,
)
from underpainting.errors import DataError
from underpainting.models.losses.exclusion import ExclusionLoss
from underpainting.xray.metrics import pearson, score

LABELS = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")


def paintings(size: int, seeds=(0, 1)) -> list[torch.Tensor]:
    """Procedural landscapes: shapes and sharp edges (but similar layouts, and straight region borders)."""
    scenes = SyntheticLandscapes(LABELS, size)
    return [(scenes(s).painting + 1) / 2 for s in seeds]


def noise_paintings(size: int, seeds=(0, 1)) -> list[torch.Tensor]:
    """Independent random 'paintings': smooth colour fields over curved regions, no straight edges."""
    out = []
    for seed in seeds:
        g = torch.Generator().manual_seed(seed)
        field = sum(
            torch.nn.functional.interpolate(
                torch.rand(1, 3, c, c, generator=g), size=(size, size), mode="bicubic"
            )
            / k
            for k, c in enumerate((3, 6, 12, 24), 1)
        )
        field = (field - field.min()) / (field.max() - field.min())
        shape = torch.nn.functional.interpolate(
            torch.rand(1, 1, 5, 5, generator=g), size=(size, size), mode="bicubic"
        )
        out.append(
            (0.6 * field + 0.4 * (shape > 0.5).float() * torch.rand(1, 3, 1, 1, generator=g))[0].clamp(0, 1)
        )
    return out


@pytest.fixture(scope="module")
def pair128():
    return paintings(128)


# ------------------------------------------------------------------------------------------------ simulator
def test_simulation_is_deterministic_and_adds_its_parts(pair128):
    a, b = XRaySimulator(seed=3)(*pair128), XRaySimulator(seed=3)(*pair128)
    assert torch.equal(a.xray, b.xray)
    assert not torch.equal(a.xray, XRaySimulator(seed=4)(*pair128).xray)
    parts = a.surface + a.hidden + sum(a.artefacts.values())
    assert torch.allclose(a.xray, parts, atol=1e-6)
    assert a.xray.shape == (1, 128, 128) and a.visible.shape == (3, 128, 128)
    simple = XRaySimulator.simple()(*pair128)
    assert torch.allclose(simple.xray, simple.surface + simple.hidden)


def test_lead_white_response_is_nonlinear_and_configurable():
    grey = torch.linspace(0, 1, 11).view(1, 1, 11).expand(3, 1, 11)
    f = LeadWhiteResponse(gamma=2.0)(grey)[0, 0]
    assert torch.allclose(f, torch.linspace(0, 1, 11) ** 2, atol=1e-6)  # lights dominate
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    heavy_red = LeadWhiteResponse(gamma=1.0, weights=(0.8, 0.1, 0.1))(red)
    assert float(heavy_red) == pytest.approx(0.8) and float(
        LeadWhiteResponse(gamma=1.0)(red)
    ) == pytest.approx(0.299)


def test_artefact_generators_have_their_signatures():
    g = torch.Generator().manual_seed(0)
    weave = Weave(amplitude=0.05, period=(5.0, 5.0), angle_deg=0.0, jitter=0.0)(g, 64, 64)[0]
    assert torch.allclose(weave[:, :59], weave[:, 5:], atol=1e-5)  # periodic with the thread period
    bars = StretcherBars()(100, 200)[0]
    assert bars[:, 0].min() > 0.07 and float(bars[50, 50]) == 0.0 and bars[:, 100].min() > 0.07
    seams = PlateSeams(rows=2, cols=2)(g, 64, 64)[0]
    assert seams.unique().numel() == 4 and torch.equal(seams[:32, :32], seams[0, 0].expand(32, 32))


def test_mixture_hides_the_concealed_design(pair128):
    m = XRaySimulator.simple()(*pair128)
    assert 0.3 < pearson(m.xray, m.hidden) < 0.9  # the mixture shows both paintings at once
    assert pearson(m.surface, luminance(m.visible)) > 0.9


# ------------------------------------------------------------------------------------------------ reading files
def test_16_bit_png_and_tiff_keep_their_precision(tmp_path):
    ramp = torch.linspace(0, 1, 4096).view(1, 64, 64)
    for name in ("x.png", "x.tif"):
        save_grey(ramp, tmp_path / name, bits=16)
        back = load_xray(tmp_path / name)
        assert back.shape == (1, 64, 64) and Image.open(tmp_path / name).mode.startswith("I;16")
        assert (back - ramp).abs().max() < 1e-4  # 8 bit would be off by up to 2e-3
        assert back.unique().numel() > 4000


def test_8_bit_and_grey_saved_as_rgb_load(tmp_path):
    a = (np.arange(64 * 64) % 256).astype(np.uint8).reshape(64, 64)
    Image.fromarray(a, "L").save(tmp_path / "l.png")
    Image.fromarray(np.stack([a] * 3, -1), "RGB").save(tmp_path / "rgb_grey.png")
    assert torch.allclose(load_xray(tmp_path / "l.png"), load_xray(tmp_path / "rgb_grey.png"))
    assert float(load_xray(tmp_path / "l.png").max()) == pytest.approx(1.0)


def test_a_colour_file_given_as_the_xray_is_refused(tmp_path, pair128):
    rgb = (pair128[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "photo.png")
    with pytest.raises(DataError, match=r"photo.png is a colour image.*swap the X-ray and the visible photo"):
        load_xray(tmp_path / "photo.png")
    with pytest.raises(DataError, match="does not exist"):
        load_xray(tmp_path / "missing.tif")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.png: cannot be read"):
        load_xray(tmp_path / "broken.png")


def test_values_no_radiograph_holds_are_refused_before_any_work(tmp_path):
    a = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    a[0, :3] = [np.nan, np.inf, -np.inf]
    Image.fromarray(a, "F").save(tmp_path / "masked.tif")
    with pytest.raises(DataError, match=r"masked.tif: 3 of 4096 pixels are not finite \(1 NaN, 2 infinite\)"):
        load_xray(tmp_path / "masked.tif")
    Image.fromarray(np.zeros((64, 64), np.uint8), "L").save(tmp_path / "black.png")
    noisy = np.full((64, 64), 30000, np.uint16) + np.random.default_rng(0).integers(0, 2, (64, 64)).astype(
        np.uint16
    )
    Image.fromarray(noisy).save(tmp_path / "flat16.png")  # one grey and its noise: 2 levels
    for name in ("black.png", "flat16.png"):
        with pytest.raises(DataError, match=f"{name}: the X-ray is blank"):
            load_xray(tmp_path / name)


def test_a_faint_16_bit_radiograph_is_not_mistaken_for_a_blank_one(tmp_path):
    """Real radiographs often use a narrow band of the 16-bit range: 40 levels out of 65536 is still a picture."""
    faint = (20000 + np.arange(64 * 64).reshape(64, 64) % 40).astype(np.uint16)
    Image.fromarray(faint).save(tmp_path / "faint.png")
    assert load_xray(tmp_path / "faint.png").unique().numel() == 40


def test_an_xray_too_small_for_the_filters_or_a_patch_is_refused_before_any_work(tmp_path):
    from underpainting.data.xray.patches import XRayDataModule

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 10)).astype(np.uint8), "L").save(
        tmp_path / "x.png"
    )
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (8, 10, 3)).astype(np.uint8)).save(
        tmp_path / "v.png"
    )
    dm = XRayDataModule(xray=str(tmp_path / "x.png"), visible=str(tmp_path / "v.png"), patch_size=8)
    with pytest.raises(DataError, match=r"x.png: the X-ray is 10x8 px, too small: .* at least 16 px"):
        dm.load()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50)).astype(np.uint8), "L").save(
        tmp_path / "x.png"
    )
    with pytest.raises(DataError, match=r"50x40 px, too small: .* at least 64 px .*`data.patch_size`=64"):
        XRayDataModule(xray=str(tmp_path / "x.png"), visible=str(tmp_path / "v.png")).load()


def test_mosaic_plates_are_stitched_and_their_exposures_equalised(tmp_path):
    truth = torch.rand(1, 1, 12, 12)
    truth = torch.nn.functional.interpolate(truth, size=(120, 150), mode="bicubic")[0].clamp(0, 1) * 0.6 + 0.2
    step, size, overlap = (60 - 10, 75 - 10), (70, 85), 20  # 2 x 2 plates of 70 x 85 px sharing 20 px
    files, offsets = [], [0.0, 0.08, -0.05, 0.03]
    for r in range(2):
        for c in range(2):
            plate = truth[:, r * step[0] : r * step[0] + size[0], c * step[1] : c * step[1] + size[1]]
            files.append(save_grey(plate + offsets[r * 2 + c], tmp_path / f"plate_{r}{c}.png", bits=16))
    mosaic = load_mosaic(files, cols=2, overlap=overlap)
    assert mosaic.shape == (1, 120, 150)
    err = (mosaic - truth).flatten()
    assert (err - err.median()).abs().max() < 2e-3  # one common offset left, no seams
    raw = load_mosaic(files, cols=2, overlap=overlap, equalise=False)
    assert ((raw - truth).flatten() - err.median()).abs().max() > 0.03
    with pytest.raises(DataError, match="do not fill rows of 3"):
        load_mosaic(files, cols=3)


# ------------------------------------------------------------------------------------------------ registration
def test_point_pairs_recover_a_similarity_and_an_affine():
    xray_pts = torch.tensor([[10.0, 20.0], [200.0, 40.0], [120.0, 180.0], [30.0, 150.0]])
    m = similarity(1.3, 7.0, 12.0, -5.0)
    vis = xray_pts @ m[:, :2].T + m[:, 2]
    assert torch.allclose(fit_transform(vis, xray_pts, "similarity"), m, atol=1e-4)
    a = torch.tensor([[1.1, 0.2, 3.0], [-0.1, 0.9, 7.0]])
    vis = xray_pts @ a[:, :2].T + a[:, 2]
    assert torch.allclose(fit_transform(vis, xray_pts, "affine"), a, atol=1e-4)
    with pytest.raises(DataError, match="at least 3 point pairs"):
        fit_transform(vis[:2], xray_pts[:2], "affine")
    line = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    with pytest.raises(DataError, match="lie on one line"):
        fit_transform(line, line, "affine")


def test_automatic_registration_recovers_a_known_transform(pair128, one_thread):
    m = XRaySimulator.simple()(*pair128)
    truth = similarity(1.04, 3.0, 4.0, -3.0)  # X-ray px -> photo px
    # The photo as a camera would see it: the X-ray's grid maps into it through `truth`.
    inv = torch.linalg.inv(torch.cat([truth, torch.tensor([[0.0, 0.0, 1.0]])]))[:2]
    photo = warp(m.visible, inv, (128, 128))
    found = auto_register(photo, m.xray, "similarity", steps=60)
    ys, xs = torch.meshgrid(torch.arange(16, 112, 8.0), torch.arange(16, 112, 8.0), indexing="ij")
    pts = torch.stack([xs.flatten(), ys.flatten(), torch.ones(xs.numel())], 1)
    err = (pts @ found.T - pts @ truth.T).norm(dim=1)
    assert err.max() < 1.0  # px, over the inner painting


def test_sizes_that_cannot_match_say_how_to_register(pair128):
    with pytest.raises(DataError, match=r"96x128 px and the X-ray 128x128.*registration.method=points"):
        register_visible(
            pair128[0][:, :, :96],
            (128, 128),
            method="none",
            source="photo.jpg".replace("photo.jpg", "the photo"),
        )
    same_shape, m = register_visible(pair128[0], (256, 256))
    assert same_shape.shape == (3, 256, 256) and float(m[0, 0]) == pytest.approx(0.5)
    with pytest.raises(DataError, match="needs `data.registration.points`"):
        register_visible(pair128[0], (128, 128), method="points")


# ------------------------------------------------------------------------------------------------ artefacts
def test_seam_removal_levels_the_plates():
    sim = XRaySimulator(weave=Weave(amplitude=0.0), bars=StretcherBars(amplitude=0.0), seed=1)
    m = sim(*noise_paintings(192))
    guide = regression_baseline(m.xray, m.visible, 3)[0]
    _, seams = remove_seams(m.xray, guide)
    assert pearson(seams, m.artefacts["seams"]) > 0.95


def test_bar_and_weave_removal_take_out_their_artefact():
    big = noise_paintings(192)
    sim = XRaySimulator(seams=PlateSeams(offset=0.0), weave=Weave(amplitude=0.0), seed=1)
    m = sim(*big)
    _, bars = remove_bars(m.xray, regression_baseline(m.xray, m.visible, 3)[0])
    assert pearson(bars, m.artefacts["bars"]) > 0.6
    m = XRaySimulator(seams=PlateSeams(offset=0.0), bars=StretcherBars(amplitude=0.0), seed=1)(*big)
    clean, weave = remove_weave(m.xray)
    left = clean - m.surface - m.hidden - m.artefacts["noise"]  # weave not removed + painting removed with it
    assert pearson(weave, m.artefacts["weave"]) > 0.8
    assert float(left.std()) < 0.6 * float(m.artefacts["weave"].std())


def test_no_artefact_no_removal():
    m = XRaySimulator.simple()(*noise_paintings(192, seeds=(3, 4)))
    guide = regression_baseline(m.xray, m.visible, 3)[0]
    assert float(remove_seams(m.xray, guide)[1].abs().max()) == 0.0
    assert float(remove_bars(m.xray, guide)[1].abs().max()) == 0.0


# ------------------------------------------------------------------------------------------------ baseline, scores
def test_polynomial_baseline_recovers_a_pointwise_response():
    m = XRaySimulator.simple(psf_sigma=0.0)(*noise_paintings(96))  # the baseline's own model: pointwise
    _, hidden = regression_baseline(m.xray, m.visible, degree=3)
    assert pearson(hidden, m.hidden) > 0.97
    _, linear = regression_baseline(m.xray, m.visible, degree=1)
    assert pearson(linear, m.hidden) < pearson(hidden, m.hidden)


def test_scores_match_moments_and_rank_estimates(pair128):
    m = XRaySimulator.simple()(*pair128)
    perfect = score(m.hidden * 3 + 1, m.hidden)
    assert perfect["r"] == pytest.approx(1.0) and perfect["psnr"] > 60 and perfect["ssim"] > 0.999
    assert (
        score(m.xray, m.hidden)["psnr"] < score(regression_baseline(m.xray, m.visible)[1], m.hidden)["psnr"]
    )


def test_exclusion_loss_is_low_for_disjoint_edges_and_high_for_shared():
    a = torch.zeros(1, 1, 32, 32)
    a[..., :, 8:] = 1.0
    b = torch.zeros(1, 1, 32, 32)
    b[..., 20:, :] = 1.0
    loss = ExclusionLoss(levels=1)
    assert float(loss(a, b)) < 0.2 * float(loss(a, a * 0.5 + b * 0.5))
