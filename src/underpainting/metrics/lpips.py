"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", Eq. 1):

    d(x, y) = sum_l  mean_hw || w_l * (f_l(x)/|f_l(x)| - f_l(y)/|f_l(y)|) ||^2

f_l are backbone activations (AlexNet relu1..5 or VGG16 relu1_2..relu5_3), normalised across channels; w_l are the
learned "lin" heads (v0.1). The heads ship inside the torchmetrics wheel; the backbones are torchvision's ImageNet
weights, loaded through the torch hub cache. The VGG backbone can also take a local state_dict (e.g. the Caffe VGG16
in ../shared/weights): then the name printed with the number says it is a stand-in.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric

from underpainting.checkpoints import read
from underpainting.metrics.features import MetricWeightsError

NETS = ("alex", "vgg")
# Activation slices of torchvision's `alexnet().features` that LPIPS reads (the reference `pretrained_networks.py`).
_ALEX_SLICES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))
_VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
# LPIPS' ScalingLayer: ImageNet mean/std rewritten for inputs in [-1, 1].
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _heads_path(net: str) -> Path:
    import torchmetrics

    return Path(torchmetrics.__file__).parent / "functional" / "image" / "lpips_models" / f"{net}.pth"


def _alexnet_features(weights: str, net_key: str, weights_key: str, download: bool) -> nn.Sequential:
    from torchvision.models import AlexNet_Weights, alexnet

    if weights != "imagenet":
        with torch.device("meta"):  # skip initialising the 58M-parameter classifier we never use
            features = alexnet(weights=None).features
        features = features.to_empty(device="cpu")
        if weights == "random":
            with torch.random.fork_rng():  # the same "random" backbone in every process and every run
                torch.manual_seed(0)
                for m in features.modules():
                    if isinstance(m, nn.Conv2d):
                        m.reset_parameters()
            return features
        sd = read(
            weights,
            "AlexNet weights file",
            f"fix `{weights_key}` (a torch.save'd state_dict)",
            MetricWeightsError,
        )
        features.load_state_dict(
            {k.removeprefix("features."): v for k, v in sd.items() if not k.startswith("classifier.")}
        )
        return features
    enum = AlexNet_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
    try:
        if not (cached.is_file() or download):
            raise FileNotFoundError("download disabled")
        return alexnet(weights=enum, progress=False).features
    except Exception as err:
        raise MetricWeightsError(
            f"ImageNet AlexNet weights for LPIPS are not in the torch hub cache and could not be fetched "
            f"({type(err).__name__}: {err}).\n  Put {enum.url}\n  at  {cached}\n"
            f"  (the cache folder follows $TORCH_HOME), or set `{weights_key}` to a local AlexNet state_dict, or use a\n"
            f"  stand-in: `{net_key}=vgg` with `{weights_key}=<vgg16 state_dict>` (labelled STAND-IN)."
        ) from None


class LPIPSNet(nn.Module):
    """Frozen LPIPS distance network: forward(x, y) -> (B,) distances for images in [-1, 1].

    Args:
        net: "alex" (the reference default) or "vgg".
        weights: backbone weights: "imagenet" (torch hub cache), a local state_dict path, or "random" (tests only).
        net_key, weights_key: the config keys (or options) users set, named in error messages.
        download: allow fetching ImageNet backbone weights that are not cached.
    """

    def __init__(
        self,
        net: str = "alex",
        weights: str | Path = "imagenet",
        net_key: str = "metrics.lpips.net",
        weights_key: str = "metrics.lpips.weights",
        download: bool = True,
    ) -> None:
        super().__init__()
        if net not in NETS:
            raise ValueError(f"LPIPS net must be one of {NETS}, got {net!r}")
        weights = str(weights)
        if weights == "random":
            warnings.warn(
                "LPIPS backbone has RANDOM weights: distances are meaningless (tests only)", stacklevel=2
            )
        self.net_name, self.weights = net, weights
        if net == "alex":
            feats = _alexnet_features(weights, net_key, weights_key, download)
            self.slices = nn.ModuleList(nn.Sequential(*feats[a:b]) for a, b in _ALEX_SLICES)
            self.vgg = None
            self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
            chns = (64, 192, 384, 256, 256)
        else:
            from underpainting.features.vgg import VGGFeatures, VGGWeightsError

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    # VGGFeatures applies the weights' own input convention (torchvision == LPIPS' ScalingLayer).
                    self.vgg = VGGFeatures(
                        _VGG_LAYERS, arch="vgg16", weights=weights, config_key=weights_key, download=download
                    )
            except VGGWeightsError as err:
                raise MetricWeightsError(f"LPIPS(vgg): {err}") from None
            self.slices = None
            chns = (64, 128, 256, 512, 512)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in chns)
        heads = read(_heads_path(net), "LPIPS heads file", "reinstall torchmetrics", MetricWeightsError)
        for i, lin in enumerate(self.lins):
            lin.weight.data.copy_(heads[f"lin{i}.model.1.weight"])
        standard = weights == "imagenet"
        self.name = f"LPIPS v0.1 {net}" + ("" if standard else f" (STAND-IN backbone {Path(weights).name})")
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPSNet:
        return super().train(False)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.vgg is not None:
            return list(self.vgg(x).values())
        x = (x - self.shift) / self.scale
        out = []
        for s in self.slices:
            x = s(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape:
            raise ValueError(
                f"LPIPS compares images of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        min_size = 32 if self.net_name == "alex" else 16  # below this the last pooling stage has nothing left
        if min(x.shape[-2:]) < min_size:
            raise ValueError(
                f"LPIPS({self.net_name}) needs images of at least {min_size} px, got {tuple(x.shape[-2:])}; "
                "use larger images (or a larger metrics.patch_size)"
            )
        fx, fy = self._features(x.float()), self._features(y.float())
        d = 0.0
        for lin, a, b in zip(self.lins, fx, fy, strict=True):
            a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            d = d + lin((a - b) ** 2).mean(dim=(2, 3))
        return d.flatten()


class LPIPS(Metric):
    """Mean LPIPS over all pairs seen, summed across DDP ranks before dividing."""

    higher_is_better = False
    full_state_update = False

    def __init__(self, net: LPIPSNet | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.net = net if net is not None else LPIPSNet()
        self.add_state("sum_scores", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    @property
    def name(self) -> str:
        return self.net.name

    def update(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if x.shape[-2:] != y.shape[-2:]:
            x = F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
        d = self.net(x, y)
        self.sum_scores += d.double().sum()
        self.total += d.numel()

    def compute(self) -> torch.Tensor:
        return (self.sum_scores / self.total.clamp(min=1)).float()
