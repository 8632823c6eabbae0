"""The project's one VGG feature extractor: perceptual losses (SPADE, pix2pixHD) and neural style transfer.

`VGGFeatures` wraps `torchvision.models.vgg19/vgg16(...).features`, takes images in [-1, 1], applies the input
convention its weights were trained with, and returns the activations at named layers (`relu4_2`, `conv1_1`,
`pool3`, ...). It is frozen, always in eval mode, and truncated after the deepest requested layer.

Weights:
- ``"imagenet"``: torchvision's weights enum, loaded through the torch hub cache (downloaded when online). Offline and
  not cached -> `VGGWeightsError` naming the file to put in the cache and the config key for a local file.
- a path to a ``.pth`` state_dict of ``vgg.features`` (keys ``0.weight`` ...) or of the whole model
  (``features.0.weight`` ..., classifier keys are ignored). A ``<name>.json`` beside it may record the input
  convention (``preprocessing.channel_order: BGR``), as `/work/shared/weights/vgg16_caffe_features.json` does.
- ``"random"``: untrained weights, for tests only; says so with a warning.

Conventions:
- ``"torchvision"``: RGB in [0, 1], normalised by the ImageNet mean/std (torchvision's weights).
- ``"caffe"``: BGR in [0, 255] minus the ImageNet BGR mean (the original Caffe VGG of Simonyan & Zisserman 2014,
  used by Gatys et al.'s code and most classic NST weights).
"""

from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from underpainting.checkpoints import read
from underpainting.errors import WeightsError

ARCHS = ("vgg16", "vgg19")
CONVENTIONS = ("torchvision", "caffe")

# torchvision.transforms defaults used to train torchvision's VGG weights.
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)
# Caffe VGG: mean pixel of ILSVRC-2012 in BGR order, 0..255 (Simonyan & Zisserman's release; Keras `preprocess_input`).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


class VGGWeightsError(WeightsError):
    """Pretrained VGG weights are missing or unreadable; the message says where to put them."""


def layer_names(arch: str = "vgg19") -> list[str]:
    """Names of the modules of `vggXX().features` in order: conv1_1, relu1_1, ..., pool5."""
    _check_arch(arch)
    from torchvision.models.vgg import cfgs

    cfg = cfgs["D" if arch == "vgg16" else "E"]
    names, block, conv = [], 1, 1
    for v in cfg:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def _check_arch(arch: str) -> None:
    if arch not in ARCHS:
        raise ValueError(f"unknown VGG arch {arch!r}; choose one of {', '.join(ARCHS)}")


def _sidecar_convention(path: Path) -> str | None:
    """The input convention recorded in `<weights>.json` beside a local weights file, if any."""
    meta = path.with_suffix(".json")
    if not meta.is_file():
        return None
    try:
        pre = json.loads(meta.read_text()).get("preprocessing", {})
    except (OSError, json.JSONDecodeError):
        return None
    order = str(pre.get("channel_order", "")).upper()
    if order == "BGR":
        return "caffe"
    if order == "RGB":
        return "torchvision"
    return None


def _hub_state_dict(arch: str, config_key: str, download: bool) -> dict[str, torch.Tensor]:
    from torchvision.models import VGG16_Weights, VGG19_Weights

    enum = (VGG19_Weights if arch == "vgg19" else VGG16_Weights).IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
    if cached.is_file() or download:
        try:
            return enum.get_state_dict(progress=False, check_hash=False)
        except Exception as err:  # URLError, socket errors, truncated files: all mean "no usable weights"
            reason = f"{type(err).__name__}: {err}"
    else:
        reason = "download disabled"
    raise VGGWeightsError(
        f"ImageNet {arch.upper()} weights are not in the torch hub cache and could not be fetched ({reason}).\n"
        f"  Put {enum.url}\n  at  {cached}\n"
        f"  (the cache folder follows $TORCH_HOME), or set `{config_key}` to a local .pth state_dict of "
        f"`{arch}.features` (or of the whole model), or `{config_key}=random` for tests only."
    )


def _local_state_dict(path: Path, config_key: str) -> dict[str, torch.Tensor]:
    fix = f"`{config_key}` must point to a torch.save'd state_dict, or be 'imagenet'"
    sd = read(path, "VGG weights file", fix, VGGWeightsError)
    if "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return sd


def _features_only(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept both `vgg.features` state dicts ("0.weight") and whole-model ones ("features.0.weight")."""
    if any(k.startswith("features.") for k in sd):
        return {k[len("features.") :]: v for k, v in sd.items() if k.startswith("features.")}
    return dict(sd)


class VGGFeatures(nn.Module):
    """Frozen VGG16/19 that maps images in [-1, 1] to {layer name: activation} at the requested layers.

    Args:
        layers: names from `layer_names(arch)` (e.g. ``["relu1_1", "relu4_2"]``); the network is cut after the
            deepest one, so asking for ``relu4_2`` never runs block 5.
        arch: ``"vgg19"`` or ``"vgg16"``.
        weights: ``"imagenet"``, ``"random"`` or a path to a local state_dict (see module docstring).
        convention: ``"torchvision"`` or ``"caffe"``. ``None`` picks ``"torchvision"`` for ``"imagenet"`` and
            ``"random"``, and for a local file the convention recorded in its ``.json`` sidecar (else torchvision,
            with a warning).
        pooling: ``"max"`` (VGG as trained) or ``"avg"`` (Gatys et al. 2016, Sec. 2: "replacing the max-pooling
            operation by average pooling improves the gradient flow and one obtains slightly more appealing
            results").
        download: allow fetching ``"imagenet"`` weights when they are not cached.
        config_key: the config key users set to change `weights`; only used in error messages.
    """

    def __init__(
        self,
        layers: Sequence[str],
        arch: str = "vgg19",
        weights: str | Path = "imagenet",
        convention: str | None = None,
        pooling: str = "max",
        download: bool = True,
        config_key: str = "vgg.weights",
    ) -> None:
        super().__init__()
        _check_arch(arch)
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        names = layer_names(arch)
        layers = list(dict.fromkeys(layers))  # de-duplicate, keep order
        unknown = [n for n in layers if n not in names]
        if not layers or unknown:
            raise ValueError(
                f"unknown {arch} layer(s) {unknown or '(none given)'}; known: {', '.join(names)}"
            )

        from torchvision.models.vgg import cfgs, make_layers

        # Only `features` (13/16 convs): building the whole model would also initialise the 120M-parameter classifier.
        features = make_layers(cfgs["D" if arch == "vgg16" else "E"], batch_norm=False)
        weights_str = str(weights)
        if weights_str == "random":
            warnings.warn(
                f"{arch} feature extractor has RANDOM weights ({config_key}=random): "
                "only for tests; perceptual/style losses are meaningless",
                stacklevel=2,
            )
            for (
                m
            ) in features.modules():  # torchvision VGG's own init (make_layers alone leaves PyTorch defaults)
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
            inferred = "torchvision"
        elif weights_str == "imagenet":
            features.load_state_dict(_features_only(_hub_state_dict(arch, config_key, download)))
            inferred = "torchvision"
        else:
            path = Path(weights_str).expanduser()
            sd = _features_only(_local_state_dict(path, config_key))
            try:
                features.load_state_dict(sd)
            except RuntimeError as err:
                raise VGGWeightsError(
                    f"{path} does not match torchvision's {arch}.features (is it the other VGG depth?): "
                    f"{str(err).splitlines()[0]}"
                ) from None
            inferred = _sidecar_convention(path)
            if convention is None and inferred is None:
                warnings.warn(
                    f"no input convention given for {path}; assuming 'torchvision' (RGB, mean/std). "
                    "Set convention='caffe' for Caffe-converted weights.",
                    stacklevel=2,
                )
            if convention is not None and inferred is not None and convention != inferred:
                warnings.warn(
                    f"{path.with_suffix('.json')} says the weights expect the {inferred!r} convention but "
                    f"convention={convention!r} was given",
                    stacklevel=2,
                )
            inferred = inferred or "torchvision"
        self.convention = convention or inferred
        if self.convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}, got {self.convention!r}")

        last = max(names.index(n) for n in layers)
        modules = []
        for i, (name, module) in enumerate(zip(names, features, strict=True)):
            if i > last:
                break
            if isinstance(module, nn.MaxPool2d) and pooling == "avg":
                module = nn.AvgPool2d(kernel_size=2, stride=2)
            if isinstance(module, nn.ReLU):
                module = nn.ReLU(inplace=False)  # in-place would overwrite the conv outputs we return
            modules.append((name, module))
        self.body = nn.Sequential(OrderedDict(modules))
        self.layers = layers
        self.arch, self.pooling, self.weights = arch, pooling, weights_str

        if self.convention == "caffe":
            mean, std = torch.tensor(CAFFE_MEAN_BGR), torch.ones(3)
        else:
            mean, std = torch.tensor(TORCHVISION_MEAN), torch.tensor(TORCHVISION_STD)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        """Stay in eval mode whatever the parent module does (the extractor is a fixed loss network)."""
        return super().train(False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] (RGB) -> the network's input convention."""
        x = (images + 1.0) / 2.0  # [0, 1] RGB
        if self.convention == "caffe":
            x = x.flip(1) * 255.0  # RGB -> BGR, 0..255
        return (x - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"VGGFeatures expects (B, 3, H, W) images in [-1, 1], got shape {tuple(images.shape)}"
            )
        x = self.preprocess(images)
        wanted, out = set(self.layers), {}
        for name, module in self.body.named_children():
            x = module(x)
            if name in wanted:
                out[name] = x
        return {n: out[n] for n in self.layers}

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch}, weights={self.weights}, convention={self.convention}, pooling={self.pooling}, "
            f"layers={self.layers}"
        )
