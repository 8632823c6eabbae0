"""junyanz/pytorch-CycleGAN-and-pix2pix generators (`models/networks.py`: `ResnetGenerator`, `UnetGenerator`) and
the project's networks of the same names, which have the same layer order: the keys differ in one place only.

Reading follows the reference's test loader (`models/base_model.py`: `load_networks` and its
`__patch_instance_norm_state_dict`), each fix explicit; writing produces what its `save_networks` writes.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

from underpainting.errors import WeightsError
from underpainting.models.networks.resnet import ResnetBlock, ResnetGenerator
from underpainting.models.networks.unet import UnetGenerator
from underpainting.zoo.common import StateDict

OPTIONS = ("netG", "ngf", "norm", "no_dropout", "input_nc", "output_nc")
REFERENCE_NETG = ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128")  # what its define_G can build

_REF_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.")
_OUR_BLOCK = re.compile(r"^model\.(\d+)\.block\.")


def to_project_key(key: str) -> str:
    """The reference names a ResnetBlock's Sequential `conv_block`, the project `block`."""
    return _REF_BLOCK.sub(r"model.\1.block.", key)


def to_reference_key(key: str) -> str:
    return _OUR_BLOCK.sub(r"model.\1.conv_block.", key)


def looks_like(sd: Mapping[str, torch.Tensor]) -> bool:
    return "model.1.weight" in sd and any(_REF_BLOCK.match(k) for k in sd) or "model.model.0.weight" in sd


def _norm(sd: Mapping[str, torch.Tensor], norm_key: str, conv_key: str) -> str:
    if f"{norm_key}.weight" in sd:  # BatchNorm2d(affine=True); InstanceNorm2d is affine=False
        return "batch"
    if f"{conv_key}.bias" in sd:  # the reference's use_bias: only instance norm keeps conv biases
        return "instance"
    return "none"


def infer_options(sd: Mapping[str, torch.Tensor]) -> dict:
    """The reference options that the key names and shapes determine ({} for another kind of file)."""
    if "model.1.weight" in sd and any(_REF_BLOCK.match(k) for k in sd):
        n_blocks = len({int(_REF_BLOCK.match(k).group(1)) for k in sd if _REF_BLOCK.match(k)})
        last = max(int(k.split(".")[1]) for k in sd if re.match(r"^model\.\d+\.weight$", k))
        return {
            "netG": f"resnet_{n_blocks}blocks",
            "ngf": sd["model.1.weight"].shape[0],
            "norm": _norm(sd, "model.2", "model.1"),
            # nn.Dropout sits between a block's two convs, so the second conv is layer 6 instead of 5
            "no_dropout": not any(re.match(r"^model\.\d+\.conv_block\.6\.weight$", k) for k in sd),
            "input_nc": sd["model.1.weight"].shape[1],
            "output_nc": sd[f"model.{last}.weight"].shape[0],
        }
    if "model.model.0.weight" in sd:
        num_downs = max(k.count("model.") for k in sd) - 1  # one `model.` per nested skip block
        outer_up = sd.get("model.model.3.weight")  # ConvTranspose2d weight: [in, out, k, k]
        return {
            "netG": f"unet_{2**num_downs}",
            "ngf": sd["model.model.0.weight"].shape[0],
            "norm": _norm(sd, "model.model.1.model.2", "model.model.1.model.1"),
            "input_nc": sd["model.model.0.weight"].shape[1],
            **({"output_nc": outer_up.shape[1]} if outer_up is not None else {}),
        }
    return {}


def resolve_options(sd: Mapping[str, torch.Tensor], given: Mapping[str, object]) -> dict:
    """The reference's defaults (`--ngf 64 --norm instance`, dropout on unless `--no_dropout`), then what the
    file shows, then the caller's options (which the fit check then holds against the file)."""
    options = {"netG": "resnet_9blocks", "ngf": 64, "norm": "instance", "no_dropout": False}
    options.update({"input_nc": 3, "output_nc": 3, **infer_options(sd), **given})
    return options


def _netg(netG: str) -> tuple[str, int]:
    if m := re.fullmatch(r"resnet_(\d+)blocks", netG):
        return "resnet", int(m.group(1))
    if (m := re.fullmatch(r"unet_(\d+)", netG)) and (n := int(m.group(1))) >= 32 and n & (n - 1) == 0:
        return "unet", int(math.log2(n))
    raise WeightsError(f"netG={netG!r} is not a junyanz generator; use one of {', '.join(REFERENCE_NETG)}")


def network_config(options: Mapping[str, object]) -> dict:
    """The project network's Hydra config for these reference options."""
    kind, depth = _netg(str(options["netG"]))
    common = {
        "in_channels": int(options["input_nc"]),
        "out_channels": int(options["output_nc"]),
        "ngf": int(options["ngf"]),
        "norm": str(options["norm"]),
        "dropout": not bool(options["no_dropout"]),
    }
    if kind == "resnet":
        return {
            "_target_": "underpainting.models.networks.resnet.ResnetGenerator",
            **common,
            "n_blocks": depth,
        }
    return {"_target_": "underpainting.models.networks.unet.UnetGenerator", **common, "num_downs": depth}


def fix_state_dict(sd: Mapping[str, torch.Tensor], net: nn.Module) -> StateDict:
    """The reference test loader's patches, made explicit:
    - InstanceNorm `running_mean`/`running_var` (files from PyTorch < 0.4) and `num_batches_tracked` (the 2018
      revision, which tracked running stats): deleted, as `__patch_instance_norm_state_dict` does. These norms
      keep no statistics; using the stale ones would change every output.
    - BatchNorm `num_batches_tracked` absent (saved before PyTorch 0.4.1): 0, what BatchNorm's own loader fills in.
    """
    modules = dict(net.named_modules())
    out = {}
    for key, value in sd.items():
        name, _, leaf = to_project_key(key).rpartition(".")
        m = modules.get(name)
        stale = leaf in ("running_mean", "running_var", "num_batches_tracked")
        if stale and isinstance(m, nn.InstanceNorm2d) and not m.track_running_stats:
            continue
        out[key] = value
    for name, m in modules.items():
        ref = to_reference_key(f"{name}.")
        if isinstance(m, nn.BatchNorm2d) and f"{ref}running_mean" in out:
            device = out[f"{ref}running_mean"].device
            out.setdefault(f"{ref}num_batches_tracked", torch.zeros((), dtype=torch.long, device=device))
    return out


def fit_hint(sd: Mapping[str, torch.Tensor], options: Mapping[str, object]) -> str | None:
    return None  # every junyanz option that shapes the network is read from the file


# ------------------------------------------------------------------------------------------------- writing
def reference_options(net: nn.Module) -> dict:
    """The `test.py` options that rebuild `net` in the reference, or a WeightsError if its `define_G` cannot."""
    norms = {type(m) for m in net.modules()}
    norm = "instance" if nn.InstanceNorm2d in norms else "batch" if nn.BatchNorm2d in norms else "none"
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    if isinstance(net, ResnetGenerator):
        netG = f"resnet_{sum(isinstance(m, ResnetBlock) for m in net.modules())}blocks"
    elif isinstance(net, UnetGenerator):
        netG = f"unet_{net.stride}"
    else:
        raise WeightsError(
            f"a {type(net).__name__} has no junyanz counterpart (ResnetGenerator, UnetGenerator)"
        )
    if netG not in REFERENCE_NETG:
        raise WeightsError(
            f"this generator is {netG}, which the reference's define_G cannot build (it has "
            f"{', '.join(REFERENCE_NETG)}): its test.py could not load the file"
        )
    return {
        "netG": netG,
        "ngf": convs[0].out_channels,
        "norm": norm,
        "no_dropout": not any(isinstance(m, nn.Dropout) for m in net.modules()),
        "input_nc": convs[0].in_channels,
        "output_nc": convs[-1].out_channels,
    }


def to_reference(net: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """`net`'s weights under the reference's key names, as its `save_networks` writes them (CPU tensors)."""
    return OrderedDict((to_reference_key(k), v.detach().cpu().clone()) for k, v in net.state_dict().items())


def reference_command(
    options: Mapping[str, object], checkpoints_dir: str, name: str, suffix: str, eval_mode: bool
) -> str:
    """The reference command that loads `<checkpoints_dir>/<name>/latest_net_G<suffix>.pth`."""
    parts = [
        "python test.py --dataroot <images> --model test",
        f"--checkpoints_dir {checkpoints_dir} --name {name}",
        f"--netG {options['netG']} --ngf {options['ngf']} --norm {options['norm']}",
    ]
    if options["input_nc"] != 3 or options["output_nc"] != 3:
        parts.append(f"--input_nc {options['input_nc']} --output_nc {options['output_nc']}")
    if options["no_dropout"]:
        parts.append("--no_dropout")
    if suffix:
        parts.append(f"--model_suffix {suffix}")
    if eval_mode:
        parts.append("--eval")
    return " ".join(parts)
