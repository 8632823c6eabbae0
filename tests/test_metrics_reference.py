"""Our FID/KID against the standard tools themselves, on the same (local, random) Inception weights: torch-fidelity's
`calculate_metrics` end to end, its statistics functions on fixed features, and clean-fid's own file reading and
`mode="clean"` resize. No download: the weights are torch-fidelity's Inception architecture, randomly initialised."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from underpainting.metrics import KID, Evaluator, Precomputed
from underpainting.metrics.features import InceptionFeatures, clean_resize
from underpainting.metrics.fid import FID

tf_fid = pytest.importorskip("torch_fidelity.metric_fid")
tf_kid = pytest.importorskip("torch_fidelity.metric_kid")
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3  # noqa: E402


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory) -> str:
    """A state_dict file for torch-fidelity's Inception with PyTorch's default (seeded) initialisation."""
    path = tmp_path_factory.mktemp("weights") / "inception_random.pth"
    with (
        torch.random.fork_rng(),
        mock.patch("torch.load", return_value={}),
        mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict"),
    ):
        torch.manual_seed(0)
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["64"], feature_extractor_weights_path="-")
    torch.save(net.state_dict(), path)
    return str(path)


def _images(seed: int, n: int, size: int = 32, shift: int = 0) -> torch.Tensor:
    """uint8 (n, 3, size, size): smooth random blobs (so resizing filters matter) plus a brightness shift."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 6, 6, generator=g) * 200 + shift
    x = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    return (x + torch.rand(n, 3, size, size, generator=g) * 40).clamp(0, 255).round().to(torch.uint8)


def _to_unit(u8: torch.Tensor) -> torch.Tensor:
    return u8.float() / 127.5 - 1.0  # what a generator outputs; our extractors quantise back to exactly `u8`


class _Images(torch.utils.data.Dataset):
    def __init__(self, u8: torch.Tensor) -> None:
        self.u8 = u8

    def __len__(self) -> int:
        return len(self.u8)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.u8[i]


@pytest.mark.slow  # ~10 s on 2 free cores: 40 Inception stems at 299 px, ours and torch-fidelity's
def test_torch_fidelity_mode_gives_torch_fidelitys_features_fid_and_kid(random_inception, one_thread):
    import torch_fidelity

    fake, real = _images(1, 10), _images(2, 10, shift=30)
    ours = InceptionFeatures(random_inception, mode="torch_fidelity", dims=64)
    theirs = FeatureExtractorInceptionV3("inception-v3-compat", ["64"], random_inception)
    assert torch.allclose(ours(_to_unit(fake[:4])), theirs(fake[:4])[0], rtol=1e-5, atol=1e-6)

    ev = Evaluator(ours, kid_subsets=20, kid_subset_size=1000)
    ev.update(_to_unit(fake), reference=_to_unit(real))
    result = ev.compute()
    m = result["metrics"]
    assert result["protocol"].kid_subset_size == 5  # 10 images < 1000: half the smaller set
    ref = torch_fidelity.calculate_metrics(
        input1=_Images(fake),
        input2=_Images(real),
        fid=True,
        kid=True,
        kid_subsets=20,
        kid_subset_size=5,
        feature_extractor_weights_path=random_inception,
        feature_layer_fid="64",
        feature_layer_kid="64",
        cuda=False,
        cache=False,
        verbose=False,
        batch_size=10,
        save_cpu_ram=True,
    )
    assert m["fid"] == pytest.approx(ref["frechet_inception_distance"], rel=1e-4)
    assert m["kid"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4)
    # torch-fidelity evaluates the kernels in float32 (we use float64): its std, a small difference of large sums,
    # carries ~1e-3 relative rounding
    assert m["kid_std"] == pytest.approx(ref["kernel_inception_distance_std"], rel=3e-3)
    assert m["kid_std"] > 0  # subsets of 5 out of 10 differ: a real spread, not ~1e-16


@pytest.mark.parametrize(("n", "d"), [(60, 16), (20, 48)])  # full-rank and singular covariances
def test_fid_and_kid_statistics_equal_torch_fidelitys(n, d):
    g = np.random.default_rng(n)
    fake = g.normal(size=(n, d)) @ g.normal(size=(d, d)) / math.sqrt(d)
    real = g.normal(size=(n + 5, d)) @ g.normal(size=(d, d)) / math.sqrt(d) + 0.4
    fid = FID(Precomputed(d))
    fid.update(torch.from_numpy(real), real=True)
    fid.update(torch.from_numpy(fake), real=False)
    expected = tf_fid.fid_statistics_to_metric(
        tf_fid.fid_features_to_statistics(torch.from_numpy(fake)),
        tf_fid.fid_features_to_statistics(torch.from_numpy(real)),
        verbose=False,
    )["frechet_inception_distance"]
    assert float(fid.compute()) == pytest.approx(expected, rel=1e-6)

    kid = KID(Precomputed(d), subsets=30, subset_size=n // 2)
    kid.update(torch.from_numpy(real), real=True)
    kid.update(torch.from_numpy(fake), real=False)
    mean, std = kid.compute()
    ref = tf_kid.kid_features_to_metric(
        torch.from_numpy(fake), torch.from_numpy(real), kid_subsets=30, kid_subset_size=n // 2, verbose=False
    )
    assert float(mean) == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-9)
    assert float(std) == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-9)


def test_clean_mode_reads_and_resizes_as_clean_fid(random_inception, tmp_path, one_thread):
    cleanfid = pytest.importorskip("cleanfid.fid")
    from cleanfid.resize import build_resizer

    u8 = _images(3, 6, size=48)
    files = []
    for i, im in enumerate(u8):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(files[-1])
    hwc = u8[0].permute(1, 2, 0).numpy()
    assert np.array_equal(clean_resize(u8[:1])[0].permute(1, 2, 0).numpy(), build_resizer("clean")(hwc))

    ours = InceptionFeatures(random_inception, mode="clean", dims=64)
    net = ours.net

    def stem(x: torch.Tensor) -> torch.Tensor:  # clean-fid hands its model float [0, 255] at 299x299
        x = (x - 128) / 128
        for block in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1"):
            x = getattr(net, block)(x)
        return x.mean(dim=(2, 3))

    theirs = cleanfid.get_files_features(
        [str(f) for f in files],
        model=stem,
        num_workers=0,
        batch_size=6,
        device="cpu",
        mode="clean",
        verbose=False,
    )
    assert np.allclose(ours(_to_unit(u8)).numpy(), theirs, rtol=1e-5, atol=1e-6)
    legacy = InceptionFeatures(random_inception, mode="torch_fidelity", dims=64)(_to_unit(u8)).numpy()
    assert not np.allclose(
        legacy, theirs, rtol=1e-3, atol=1e-4
    )  # the two standard modes are different numbers


def test_protocol_names_the_mode_and_only_pool3_is_standard(random_inception):
    clean = InceptionFeatures(random_inception, mode="clean", dims=64)
    assert not clean.standard and "64-d" in clean.name  # a cheaper tap is not the FID papers report
    ev = Evaluator(clean, kid=False)
    ev.update(_to_unit(_images(4, 3)), reference=_to_unit(_images(5, 3)))
    assert "STAND-IN" in str(ev.compute()["protocol"])
    pool3 = InceptionFeatures(random_inception, mode="torch_fidelity")
    assert pool3.standard and pool3.num_features == 2048
    text = str(Evaluator(pool3, kid=False).protocol())
    assert text.startswith("FID/KID, standard: torch-fidelity (TF1-style bilinear, no antialias)")
