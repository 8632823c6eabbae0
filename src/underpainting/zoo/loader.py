"""Published generator files -> the project's networks, with the published weights, in eval mode.

`load_published("style_vangogh.pth")` gives a `ResnetGenerator`; `load_published("checkpoints/ade20k_pretrained")`
a `SPADEGenerator`. The architecture comes from the state dict where its shapes say it, the rest from the
reference's own option names (`netG`, `num_upsampling_layers`, `dataset_mode`, ...) or a SPADE folder's `opt.txt`.
`convert` writes the result as an exported-generator file that `infer.py` and `checkpoints.load_exported` read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from torch import nn

from underpainting.checkpoints import write
from underpainting.errors import WeightsError
from underpainting.zoo import junyanz, nvlabs
from underpainting.zoo.common import (
    StateDict,
    check_fit,
    check_tensors,
    describe,
    read_state_dict,
    strip_data_parallel,
)
from underpainting.zoo.labels import LabelSpace

SOURCES: dict[str, ModuleType] = {"junyanz": junyanz, "nvlabs": nvlabs}
# The reference test scripts' protocols: junyanz's test.py stays in train mode unless --eval (Isola et al. 2017,
# Sec. 3.3: dropout on, test-batch statistics); SPADE's test.py calls model.eval().
TEST_PROTOCOL = {"junyanz": "paper", "nvlabs": "eval"}


@dataclass
class Published:
    """A published generator in the project's network, and what using it like the reference needs."""

    net: nn.Module
    source: str
    options: dict
    config: dict
    path: Path | None = None
    label_space: LabelSpace | None = None
    test_protocol: str = "eval"

    def summary(self) -> str:
        name = self.config["_target_"].rsplit(".", 1)[-1]
        n = sum(p.numel() for p in self.net.parameters())
        space = f"; label space {describe(self.label_space.as_dict())}" if self.label_space else ""
        return f"{self.source} {name} ({n:,} parameters): {describe(self.options)}{space}"


def detect_source(sd: Mapping[str, torch.Tensor]) -> str | None:
    return next((name for name, m in SOURCES.items() if m.looks_like(sd)), None)


def _spade_folder(folder: Path) -> tuple[Path, dict]:
    """A SPADE checkpoints folder (`checkpoints/ade20k_pretrained/`): its `latest_net_G.pth` and `opt.txt`."""
    weights = folder / "latest_net_G.pth"
    if not weights.is_file():
        found = sorted(p.name for p in folder.glob("*_net_G.pth"))
        if len(found) != 1:
            raise WeightsError(
                f"{folder} has no latest_net_G.pth{f' (it has {found})' if found else ''}: pass the folder "
                "extracted from SPADE's checkpoints.tar.gz (e.g. checkpoints/ade20k_pretrained) or the .pth itself"
            )
        weights = folder / found[0]
    return weights, _opt_txt(weights)


def _opt_txt(weights: Path) -> dict:
    opt = weights.parent / "opt.txt"
    return nvlabs.read_opt_txt(opt) if opt.is_file() else {}


def _build(config: Mapping, device: str | torch.device) -> nn.Module:
    with torch.device(device):
        return instantiate(dict(config))


def _load(net: nn.Module, sd: StateDict, device: str | torch.device) -> nn.Module:
    net.load_state_dict(sd, assign=torch.device(device).type == "meta")
    return net.eval()


def _advice(module: ModuleType, sd: Mapping, source: str, given: Mapping, resolved: Mapping) -> str:
    """Which options would fit: those the file's shapes say, where the caller's disagree; else another source."""
    inferred = module.infer_options(sd)
    clash = {k: inferred[k] for k, v in given.items() if k in inferred and inferred[k] != v}
    if clash:
        return f"The file's shapes say {describe(clash)}: drop or change {', '.join(clash)}."
    if "semantic_nc" in inferred and resolved.get("semantic_nc") != inferred["semantic_nc"]:
        return (
            f"It takes {inferred['semantic_nc']} input channels, not label_nc {resolved.get('label_nc')} "
            f"+ dontcare {resolved.get('contain_dontcare_label')} + instance {not resolved.get('no_instance')}: "
            "set label_nc / contain_dontcare_label / no_instance (or dataset_mode) to what it was trained with."
        )
    if hint := module.fit_hint(sd, resolved):
        return hint
    other = detect_source(sd)
    if other is not None and other != source:
        return f"It looks like a {other} generator: pass source={other} (--source {other})."
    return (
        "No option set of the reference generators builds this layout (junyanz: netG resnet_6blocks/"
        "resnet_9blocks/unet_128/unet_256; NVlabs: SPADEGenerator): is it a discriminator (latest_net_D.pth) or "
        "another model's file?"
    )


def read_published(
    src: str | Path | Mapping[str, torch.Tensor],
    source: str = "auto",
    *,
    device: str | torch.device = "cpu",
    **options,
) -> Published:
    """Read a published `.pth`, a SPADE checkpoints folder, a state dict, or a `convert`ed file; see module doc."""
    path, from_file = None, {}
    if isinstance(src, Mapping):
        sd, where = dict(src), "the state dict"
    else:
        path = Path(src).expanduser()
        if path.is_dir():
            path, from_file = _spade_folder(path)
        else:
            from_file = _opt_txt(path)
        sd, where = read_state_dict(path), str(path)
    if "zoo" in sd and "state_dict" in sd:
        return _converted(sd, path, device, options)
    check_tensors(sd, where)
    sd = strip_data_parallel(sd)
    if source == "auto":
        source = detect_source(sd) or ""
        if not source:
            first = next(iter(sd), "(empty)")
            raise WeightsError(
                f"{where} is neither a junyanz CycleGAN/pix2pix generator (keys model.1.weight ... conv_block, or "
                f"model.model.0.weight) nor an NVlabs SPADE generator (head_0...); its first key is {first!r}"
            )
    if source not in SOURCES:
        raise WeightsError(f"source={source!r}: use junyanz, nvlabs or auto")
    module = SOURCES[source]
    unknown = sorted(set(options) - set(module.OPTIONS))
    if unknown:
        raise WeightsError(
            f"unknown {source} option(s) {', '.join(unknown)}; the reference names are {', '.join(module.OPTIONS)}"
        )
    try:
        if source == "junyanz":
            resolved = junyanz.resolve_options(sd, options)
        else:
            resolved = nvlabs.resolve_options(sd, options, from_file)
        config = module.network_config(resolved)
        net = _build(config, device)
    except WeightsError as e:
        raise WeightsError(f"{where}: {e}") from e
    except (TypeError, ValueError, InstantiationException) as e:  # a network constructor refusing the options
        raise WeightsError(f"{where}: the options {describe(resolved)} build no network ({e})") from e
    sd = module.fix_state_dict(sd, net)
    expected = {module.to_reference_key(k): v for k, v in net.state_dict().items()}
    shown = {k: resolved[k] for k in module.OPTIONS if k in resolved}
    built = f"{source} {config['_target_'].rsplit('.', 1)[-1]}({describe(shown)})"
    check_fit(expected, sd, where, built, lambda: _advice(module, sd, source, options, resolved))
    _load(net, {module.to_project_key(k): v for k, v in sd.items()}, device)
    space = nvlabs.label_space(resolved) if source == "nvlabs" else None
    return Published(net, source, shown, config, path, space, TEST_PROTOCOL[source])


def load_published(
    src: str | Path | Mapping[str, torch.Tensor],
    source: str = "auto",
    *,
    device: str | torch.device = "cpu",
    **options,
) -> nn.Module:
    """The project's network with the published weights, in eval mode (`source`: junyanz, nvlabs or auto)."""
    return read_published(src, source, device=device, **options).net


# ------------------------------------------------------------------------------------------- converted files
def convert(src: str | Path, out: str | Path, source: str = "auto", **options) -> Path:
    """Write `src` as an exported-generator file (`{name, config, labels, state_dict}`, as `underpainting.export`
    writes) plus a `zoo` entry with the reference options, label space and test protocol."""
    pub = read_published(src, source, **options)
    payload = {
        "name": "G",
        "config": pub.config,
        "labels": None,
        "state_dict": pub.net.state_dict(),
        "zoo": {
            "source": pub.source,
            "file": str(pub.path) if pub.path else None,
            "options": pub.options,
            "label_space": pub.label_space.as_dict() if pub.label_space else None,
            "test_protocol": pub.test_protocol,
        },
    }
    return write(payload, out)


def _converted(payload: dict, path: Path | None, device, options: Mapping) -> Published:
    """A `convert`ed file: the network as stored; only its label space may be given anew."""
    zoo, where = payload["zoo"], path or "the converted state dict"
    space = zoo.get("label_space")
    if options:
        if zoo["source"] != "nvlabs" or set(options) - set(nvlabs.LABEL_OPTIONS):
            raise WeightsError(
                f"{where} is a converted file, so its network is fixed: only the label space "
                f"({', '.join(nvlabs.LABEL_OPTIONS)}) can be given; convert the original again to change the rest"
            )
        base = {} if "dataset_mode" in options else (space or {})
        space = nvlabs.label_space(nvlabs.resolve_options({}, {**base, **options}, {}))
        if space is not None and space.semantic_nc != payload["config"]["semantic_nc"]:
            raise WeightsError(
                f"{where}: the label space {describe(space.as_dict())} has {space.semantic_nc} channels, the "
                f"generator takes {payload['config']['semantic_nc']}"
            )
    elif space is not None:
        space = LabelSpace(**space)
    try:
        net = _load(_build(payload["config"], device), payload["state_dict"], device)
    except RuntimeError as e:
        raise WeightsError(f"{where}: its weights do not fit its own config ({e}); convert it again") from e
    return Published(
        net, zoo["source"], dict(zoo["options"]), payload["config"], path, space, zoo["test_protocol"]
    )
