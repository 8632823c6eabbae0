"""NVlabs/SPADE generators (`models/networks/generator.py` `SPADEGenerator`, `architecture.py`, `normalization.py`)
and the project's `SPADEGenerator`, which has the same module tree. Two things differ in the keys:

- the reference wraps its convs with the old `torch.nn.utils.spectral_norm` (`weight_orig`, `weight_u`,
  `weight_v`), the project with `torch.nn.utils.parametrizations.spectral_norm` (`parametrizations.weight.original`,
  `....0._u`, `....0._v`). Both compute W / (u . W v) from the stored vectors in eval mode, so u and v are kept
  as they are (an exact sigma would differ from the one the model was trained with).
- nothing else: its `SynchronizedBatchNorm2d` registers plain BatchNorm's buffers.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from underpainting.errors import WeightsError
from underpainting.models.networks.spade import NUM_UP_LAYERS, SPADEGenerator
from underpainting.zoo.common import StateDict
from underpainting.zoo.labels import LabelSpace

OPTIONS = (
    "ngf", "norm_G", "label_nc", "contain_dontcare_label", "no_instance", "num_upsampling_layers", "use_vae",
    "z_dim", "crop_size", "aspect_ratio", "dataset_mode", "output_nc",
)  # fmt: skip
LABEL_OPTIONS = ("dataset_mode", "label_nc", "contain_dontcare_label", "no_instance")

# The reference's data/*_dataset.py option setters (what `test.py --dataset_mode X` runs with).
DATASETS = {
    "ade20k": {"label_nc": 150, "contain_dontcare_label": True, "no_instance": True, "crop_size": 256,
               "aspect_ratio": 1.0, "num_upsampling_layers": "normal"},
    "coco": {"label_nc": 182, "contain_dontcare_label": True, "no_instance": False, "crop_size": 256,
             "aspect_ratio": 1.0, "num_upsampling_layers": "normal"},
    "cityscapes": {"label_nc": 35, "contain_dontcare_label": False, "no_instance": False, "crop_size": 512,
                   "aspect_ratio": 2.0, "num_upsampling_layers": "more"},
}  # fmt: skip
# options/base_options.py and the generator's modify_commandline_options
DEFAULTS = {"ngf": 64, "norm_G": "spectralspadesyncbatch3x3", "num_upsampling_layers": "normal", "use_vae": False,
            "z_dim": 256, "crop_size": 256, "aspect_ratio": 1.0, "output_nc": 3}  # fmt: skip

_SN = (
    ("weight_orig", "parametrizations.weight.original"),
    ("weight_u", "parametrizations.weight.0._u"),
    ("weight_v", "parametrizations.weight.0._v"),
)
_TYPES = {
    "ngf": int,
    "label_nc": int,
    "z_dim": int,
    "crop_size": int,
    "aspect_ratio": float,
    "output_nc": int,
}
_BOOLS = ("contain_dontcare_label", "no_instance", "use_vae")


def to_project_key(key: str) -> str:
    for ref, ours in _SN:
        if key.endswith("." + ref):
            return key[: -len(ref)] + ours
    return key


def to_reference_key(key: str) -> str:
    for ref, ours in _SN:
        if key.endswith("." + ours):
            return key[: -len(ours)] + ref
    return key


def looks_like(sd: Mapping[str, torch.Tensor]) -> bool:
    return "head_0.norm_0.mlp_shared.0.weight" in sd


def read_opt_txt(path: Path) -> dict:
    """The options in a SPADE checkpoint folder's `opt.txt` (`save_options`: `{key:>25}: {value:<30}` and an
    optional `[default: ...]`). Its twin `opt.pkl` is a pickle, which is never loaded."""
    options = {}
    for line in path.read_text(errors="replace").splitlines():
        key, sep, rest = line.partition(":")
        key, value = key.strip(), rest.split("[default:")[0].strip()
        if not sep or key not in OPTIONS:
            continue
        try:
            options[key] = value == "True" if key in _BOOLS else _TYPES.get(key, str)(value)
        except ValueError:
            continue  # a malformed line loses only that option
    return options


def parse_norm_G(norm_G: str) -> tuple[bool, str, int]:
    """'spectralspadesyncbatch3x3' -> (spectral, param-free norm, kernel): the reference's string, read once."""
    m = re.fullmatch(r"(spectral)?spade(syncbatch|batch|instance)(\d+)x\d+", norm_G)
    if m is None:
        raise WeightsError(
            f"norm_G={norm_G!r} is not a SPADE generator norm (e.g. spectralspadesyncbatch3x3)"
        )
    return m.group(1) is not None, "instance" if m.group(2) == "instance" else "batch", int(m.group(3))


def infer_options(sd: Mapping[str, torch.Tensor]) -> dict:
    """What the shapes determine: width, norm_G, VAE input, the `most` layout, and the input channel count."""
    if not looks_like(sd):
        return {}
    mlp = sd["head_0.norm_0.mlp_shared.0.weight"]  # [hidden, semantic_nc, k, k]
    batch = "head_0.norm_0.param_free_norm.running_mean" in sd
    spectral = "head_0.conv_0.weight_orig" in sd
    options = {
        "ngf": sd["head_0.norm_0.mlp_gamma.weight"].shape[0] // 16,
        "norm_G": f"{'spectral' if spectral else ''}spade{'syncbatch' if batch else 'instance'}"
        f"{mlp.shape[-1]}x{mlp.shape[-1]}",
        "use_vae": sd["fc.weight"].ndim == 2,
        "output_nc": sd["conv_img.weight"].shape[0],
        "semantic_nc": mlp.shape[1],
        "spade_hidden": mlp.shape[0],
    }
    if options["use_vae"]:
        options["z_dim"] = sd["fc.weight"].shape[1]
    if any(k.startswith("up_4.") for k in sd):
        options["num_upsampling_layers"] = "most"
    return options


def guess_dataset(semantic_nc: int) -> str | None:
    """The pretrained dataset whose channel count this is (ADE20K 151, COCO-Stuff 184, Cityscapes 36)."""
    for name, d in DATASETS.items():
        if d["label_nc"] + d["contain_dontcare_label"] + (not d["no_instance"]) == semantic_nc:
            return name
    return None


def resolve_options(sd: Mapping[str, torch.Tensor], given: Mapping[str, object], from_file: Mapping) -> dict:
    """Defaults < the dataset's setter < `opt.txt` < what the shapes show < the caller's options."""
    inferred = infer_options(sd)
    dataset = given.get("dataset_mode") or from_file.get("dataset_mode")
    dataset = dataset or guess_dataset(inferred.get("semantic_nc", -1))
    options = {**DEFAULTS, **DATASETS.get(str(dataset), {}), **from_file, **inferred, **given}
    if dataset:
        options["dataset_mode"] = dataset
    if "label_nc" in options:
        options["semantic_nc"] = (
            int(options["label_nc"])
            + bool(options.get("contain_dontcare_label", False))
            + (not options.get("no_instance", False))
        )
    return options


def label_space(options: Mapping[str, object]) -> LabelSpace | None:
    if "label_nc" not in options:
        return None
    return LabelSpace(
        str(options.get("dataset_mode", "custom")),
        int(options["label_nc"]),
        bool(options.get("contain_dontcare_label", False)),
        bool(options.get("no_instance", False)),
    )


def latent_size(options: Mapping[str, object]) -> tuple[int, int]:
    """compute_latent_vector_size: sw = crop_size / 2**n, sh = round(sw / aspect_ratio)."""
    n = NUM_UP_LAYERS[str(options["num_upsampling_layers"])]
    sw = int(options["crop_size"]) // 2**n
    return round(sw / float(options["aspect_ratio"])), sw


def network_config(options: Mapping[str, object]) -> dict:
    spectral, norm, kernel = parse_norm_G(str(options["norm_G"]))
    if options["num_upsampling_layers"] not in NUM_UP_LAYERS:
        raise WeightsError(
            f"num_upsampling_layers={options['num_upsampling_layers']!r}: use one of {', '.join(NUM_UP_LAYERS)}"
        )
    if "semantic_nc" not in options:
        raise WeightsError("label_nc is needed to build a SPADE generator without a file")
    scale = 2 ** NUM_UP_LAYERS[str(options["num_upsampling_layers"])]
    sh, sw = latent_size(options)
    return {
        "_target_": "underpainting.models.networks.spade.SPADEGenerator",
        "semantic_nc": int(options["semantic_nc"]),
        "ngf": int(options["ngf"]),
        "num_upsampling_layers": str(options["num_upsampling_layers"]),
        "use_vae": bool(options["use_vae"]),
        "z_dim": int(options["z_dim"]),
        "crop_size": [sh * scale, sw * scale],
        "spectral": spectral,
        "norm": norm,
        "spade_hidden": int(options.get("spade_hidden", 128)),  # normalization.py: nhidden = 128, hard-coded
        "spade_kernel_size": kernel,
        "output_nc": int(options["output_nc"]),
    }


def fit_hint(sd: Mapping[str, torch.Tensor], options: Mapping[str, object]) -> str | None:
    """The one size the shapes cannot say: with the style encoder, fc projects z onto the latent sh x sw."""
    fc = sd.get("fc.weight")
    if fc is None or fc.ndim != 2:
        return None
    cells = fc.shape[0] // (16 * int(options["ngf"]))
    return (
        f"Its fc projects z onto {fc.shape[0]} = 16*ngf*sh*sw values, so sh*sw = {cells}: set crop_size, "
        "aspect_ratio and num_upsampling_layers to what it was trained with (sw = crop_size / 2**(5, 6 or 7 for "
        "normal/more/most), sh = sw / aspect_ratio)."
    )


def fix_state_dict(sd: Mapping[str, torch.Tensor], net: nn.Module) -> StateDict:
    return dict(sd)  # the key renames are all there is


# ------------------------------------------------------------------------------------------------- writing
def reference_options(net: nn.Module, labels: int, dontcare: bool, instance: bool) -> dict:
    """The `test.py` options that rebuild `net` in the reference, or a WeightsError if they cannot."""
    if not isinstance(net, SPADEGenerator):
        raise WeightsError(f"a {type(net).__name__} has no NVlabs/SPADE counterpart (SPADEGenerator)")
    sn = hasattr(net.head_0.conv_0, "parametrizations")
    norm = "syncbatch" if isinstance(net.head_0.norm_0.param_free_norm, nn.BatchNorm2d) else "instance"
    if net.use_vae:
        raise WeightsError(
            "this SPADE generator takes the style encoder's z (use_vae), and the encoder has no exact reference "
            "counterpart here (models/networks/spade.py ConvEncoder): export it without --format"
        )
    mlp = net.head_0.norm_0.mlp_shared[0]
    if mlp.out_channels != 128:
        raise WeightsError(
            f"spade_hidden={mlp.out_channels}: the reference's SPADE layers have 128 hidden channels, hard-coded"
        )
    h, w = net.crop_size
    k = mlp.kernel_size[0]
    return {
        "ngf": net.ngf,
        "norm_G": f"{'spectral' if sn else ''}spade{norm}{k}x{k}",
        "label_nc": labels,
        "contain_dontcare_label": dontcare,
        "no_instance": not instance,
        "num_upsampling_layers": net.num_upsampling_layers,
        "use_vae": net.use_vae,
        "z_dim": net.z_dim,
        "crop_size": w,
        "aspect_ratio": w / h,
    }


# architecture.py SPADEResnetBlock.__init__ creates its convs before its norms; the project's block interleaves them.
_BLOCK_ORDER = ("conv_0", "conv_1", "conv_s", "norm_0", "norm_1", "norm_s")


def to_reference(net: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """`net`'s weights under the reference's names and in its `state_dict()` order (CPU tensors)."""
    items = [(to_reference_key(k), v.detach().cpu().clone()) for k, v in net.state_dict().items()]
    top = list(dict.fromkeys(k.split(".")[0] for k, _ in items))

    def rank(item: tuple[str, torch.Tensor]) -> tuple[int, int]:
        parts = item[0].split(".")
        return top.index(parts[0]), _BLOCK_ORDER.index(parts[1]) if parts[1] in _BLOCK_ORDER else 0

    return OrderedDict(sorted(items, key=rank))


def reference_command(options: Mapping[str, object], checkpoints_dir: str, name: str) -> str:
    parts = [
        "python test.py --dataset_mode custom --label_dir <label PNGs> --image_dir <images>",
        f"--checkpoints_dir {checkpoints_dir} --name {name} --label_nc {options['label_nc']}",
        f"--ngf {options['ngf']} --norm_G {options['norm_G']} --crop_size {options['crop_size']}",
        f"--aspect_ratio {options['aspect_ratio']} --num_upsampling_layers {options['num_upsampling_layers']}",
    ]
    parts += [f"--{k}" for k in ("contain_dontcare_label", "no_instance", "use_vae") if options[k]]
    return " ".join(parts)
