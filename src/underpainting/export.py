"""Exporting a trained model's generators alone, for `infer.py` or as the reference code's files.

Every checkpoint written by `train.py` carries its resolved config (`underpainting_config`), so a generator can be
rebuilt without the command line that trained it: `python -m underpainting.export <ckpt> [out_dir]` writes one
small file per generator (e.g. `G_BA.pt`, photo -> painting) that `checkpoints.load_exported` reads back.

`--format junyanz` (CycleGAN, pix2pix) or `--format nvlabs` (SPADE) writes them instead as the reference code's
`latest_net_G*.pth`, which its `test.py` loads, and prints that command. `--test-protocol paper|eval` records how
pix2pix is to be run at test time (default: the model's `test_protocol`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torch import nn

<<<<<<< HEAD
from underpainting.data.labels import LabelSet
from underpainting.errors import UserError, WeightsError, exit_on_user_error
from underpainting.models.ema import adapt_checkpoint


def load_checkpoint(path: str | Path) -> dict:
    """torch.load with `weights_only=True` and errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"checkpoint {path} does not exist; train one with `python train.py ...` or fix the path"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors, truncated files, non-torch files
        raise WeightsError(f"{path} is not a readable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict):
        raise WeightsError(f"{path} does not hold a checkpoint dictionary")
    return ckpt


def _with_weights(module: nn.Module, state_dict: dict, path: str | Path) -> nn.Module:
    """`module` with `state_dict` loaded, in eval mode; a mismatch names the file."""
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as e:
        raise WeightsError(f"{path}: weights do not fit the architecture in its own config ({e})") from e
    return module.eval()


def nonfinite_tensors(state_dict: dict) -> list[str]:
    """Names of floating-point tensors holding nan or inf."""
    floats = [(k, v) for k, v in state_dict.items() if torch.is_tensor(v) and v.is_floating_point()]
    if not floats or bool(torch.stack([torch.isfinite(v).all() for _, v in floats]).all()):
        return []
    return [k for k, v in floats if not torch.isfinite(v).all()]


def check_finite(state_dict: dict, path: str | Path) -> None:
    if bad := nonfinite_tensors(state_dict):
        raise WeightsError(
            f"{path} holds non-finite weights (nan/inf in {len(bad)} tensors, first {', '.join(bad[:3])}): the run "
            "that wrote it had diverged. Use an earlier checkpoint of that run, or retrain (the divergence guard "
            "now stops such runs before they write one)."
        )


def build_model(path: str | Path, ema: bool = True) -> tuple[pl.LightningModule, dict]:
    """The LightningModule a training checkpoint came from, weights loaded, in eval mode; and its run config.
    With `ema` (default) and a checkpoint that has generator weight averages, the networks hold the averages."""
    ckpt = load_checkpoint(path)
    cfg = ckpt.get("underpainting_config")
    if cfg is None or "state_dict" not in ckpt:
        raise WeightsError(
            f"{path} was not written by underpainting's train.py (no embedded config or state_dict)"
        )
    check_finite(ckpt["state_dict"], path)
    model = instantiate(cfg["model"])
    if (averages := getattr(model, "ema", None)) is not None:
        adapt_checkpoint(ckpt["state_dict"], averages, exportable_names(model))
    model = _with_weights(model, ckpt["state_dict"], path)
    if ema and averages is not None:
        averages.copy_to_networks()
    return model, cfg


def check_labels(ckpt_labels: dict | None, labels: LabelSet, path: Path) -> None:
    """A checkpoint trained on another label set would read every sketch wrong: stop, naming both sets."""
    if not ckpt_labels:
        return
    theirs = LabelSet(ckpt_labels["classes"])
    if theirs.names == labels.names and torch.equal(theirs.palette, labels.palette):
        return
    diff = next(
        (
            f"id {a.id}: checkpoint {a.name!r} {a.rgb} vs config {b.name!r} {b.rgb}"
            for a, b in zip(theirs.classes, labels.classes, strict=False)
            if (a.name, a.rgb) != (b.name, b.rgb)
        ),
        f"the checkpoint has {len(theirs)} classes, the config {len(labels)}",
    )
    raise WeightsError(
        f"{path} was trained with a different label set ({len(theirs)} classes: {', '.join(theirs.names[:6])}...) "
        f"than this config's `labels` ({len(labels)} classes: {', '.join(labels.names[:6])}...); first difference: "
        f"{diff}. Use the labels it was trained with (`labels=<name>`) or a checkpoint trained on these."
    )


# `model=<name>` for each LightningModule, for messages.
MODEL_CHOICES = {
    "underpainting.models.cyclegan.CycleGAN": "cyclegan",
    "underpainting.models.spade.SPADEModel": "spade",
    "underpainting.models.pix2pix.Pix2Pix": "pix2pix",
    "underpainting.models.nst.NeuralStyleTransfer": "nst",
}
TRAINING_ONLY_KEYS = (
    "optimizer",
    "scheduler",
    "vgg",
    "lambda",
    "seed",
    "gan_mode",
    "pool_size",
    "ema_decay",
    "compile",
    "labels",
)


def _flatten(d: Mapping, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def architecture_differences(theirs: Mapping, ours: Mapping) -> list[tuple[str, object, object]]:
    """(key, checkpoint value, current value) of the model-config keys that differ, training-only keys left out."""
    a, b = _flatten(theirs), _flatten(ours)
    return [
        (k, a.get(k), b.get(k))
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k) and not k.startswith(TRAINING_ONLY_KEYS)
    ]


def check_run_checkpoint(
    path: str | Path, model: nn.Module, model_cfg: Mapping, key: str = "ckpt_path"
) -> None:
    """The checks `infer.py` makes, before `trainer.fit`/`trainer.test` gets `path`: a readable train.py checkpoint
    of this model class, trained on the same labels, with finite weights that fit the configured networks. Each
    failure is one WeightsError paragraph naming the file and the fix, instead of Lightning's traceback."""
    path = Path(path)
    ckpt = load_checkpoint(path)
    cfg = ckpt.get("underpainting_config")
    if cfg is None or "state_dict" not in ckpt:
        raise WeightsError(f"`{key}`={path} was not written by underpainting's train.py (no embedded config)")
    theirs, ours = cfg.get("model", {}).get("_target_", "?"), model_cfg.get("_target_", "?")
    if theirs != ours:
        choice = MODEL_CHOICES.get(theirs)
        raise WeightsError(
            f"`{key}`={path} holds a {theirs.rsplit('.', 1)[-1]} checkpoint ({theirs}), but this run's model is "
            f"{ours.rsplit('.', 1)[-1]}: "
            + (f"add `model={choice}` (with the data it was trained on), " if choice else "")
            + "or pass a checkpoint of this model"
        )
    if isinstance(getattr(model, "labels", None), LabelSet):
        check_labels(cfg.get("labels"), model.labels, path)
    check_finite(ckpt["state_dict"], path)
    if not getattr(model, "strict_loading", True):  # NST: the image's size depends on its pyramid level
        return
    sd, own = ckpt["state_dict"], model.state_dict()
    own = {k: v for k, v in own.items() if not k.startswith("ema.")}
    sd = {k: v for k, v in sd.items() if not k.startswith("ema.")}
    shapes = [
        (k, tuple(sd[k].shape), tuple(v.shape)) for k, v in own.items() if k in sd and sd[k].shape != v.shape
    ]
    missing, unexpected = [k for k in own if k not in sd], [k for k in sd if k not in own]
    if not (shapes or missing or unexpected):
        return
    parts = []
    if shapes:
        k, a, b = shapes[0]
        parts.append(f"{len(shapes)} tensors have other shapes (first {k}: {a} in the checkpoint, {b} now)")
    if missing:
        parts.append(f"{len(missing)} of this model's tensors are not in it (first {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} of its tensors are not in this model (first {unexpected[0]})")
    diff = architecture_differences(cfg["model"], model_cfg)
    fix = (
        "It was trained with "
        + ", ".join(f"model.{k}={a!r} (now {b!r})" for k, a, b in diff[:5])
        + ("..." if len(diff) > 5 else "")
        + ": set those to resume or evaluate it."
        if diff
        else "Use the model settings it was trained with."
    )
    raise WeightsError(f"`{key}`={path} does not fit the configured networks: {'; '.join(parts)}. {fix}")
=======
from underpainting.checkpoints import build_model, write
from underpainting.errors import UserError
from underpainting.zoo import junyanz, nvlabs
>>>>>>> ckpt


def exportable_names(model: nn.Module) -> tuple[str, ...]:
    return tuple(getattr(model, "exportable", ()))


def _protocol(model: nn.Module, test_protocol: str | None) -> str | None:
    """The test protocol to record: the caller's, else the model's own (pix2pix); None for models without one."""
    own = getattr(model, "hparams", {}).get("test_protocol")
    if test_protocol is not None and test_protocol not in ("paper", "eval"):
        raise UserError(f"--test-protocol must be paper or eval, got {test_protocol!r}")
    return test_protocol or own


def export_generators(
    path: str | Path, out_dir: str | Path | None = None, test_protocol: str | None = None
) -> list[Path]:
    """Write each of the model's `exportable` networks as {name, config, labels, state_dict[, test_protocol]}."""
    model, cfg = build_model(path)
    out_dir = Path(out_dir) if out_dir is not None else Path(path).parent.parent / "export"
    protocol = _protocol(model, test_protocol)
    written = []
    for name in exportable_names(model):
        net = getattr(model, name)
        payload = {
            "name": name,
            "config": cfg["model"][name],
            "labels": cfg.get("labels"),
            "state_dict": net.state_dict(),
            **({"test_protocol": protocol} if protocol else {}),
        }
        written.append(write(payload, out_dir / f"{name}.pt"))
    return written


# The reference's file names: CycleGAN G_A is A -> B (our G_AB), G_B is B -> A (our G_BA); others save `G`.
REFERENCE_NAMES = {"G_AB": "G_A", "G_BA": "G_B", "G": "G"}


def export_reference(
    path: str | Path,
    out_dir: str | Path | None = None,
    fmt: str = "junyanz",
    test_protocol: str | None = None,
) -> tuple[list[Path], list[str]]:
    """Write the generators as the reference's `save_networks` would (`<out_dir>/<fmt>/latest_net_G*.pth`), and
    return the files and the reference `test.py` commands that load them."""
    if fmt not in ("junyanz", "nvlabs"):
        raise UserError(f"--format must be underpainting, junyanz or nvlabs, got {fmt!r}")
    model, _ = build_model(path)
    base = Path(out_dir) if out_dir is not None else Path(path).parent.parent / "export"
    dest_dir = base / fmt
    eval_mode = _protocol(model, test_protocol) == "eval"
    written, commands = [], []
    for name in (n for n in exportable_names(model) if n in REFERENCE_NAMES):
        net, ref = getattr(model, name), REFERENCE_NAMES[name]
        if fmt == "junyanz":
            options, state = junyanz.reference_options(net), junyanz.to_reference(net)
            suffix = ref[1:]  # "_A", "_B" or ""
            commands.append(junyanz.reference_command(options, str(base), fmt, suffix, eval_mode))
        else:
            hp = model.hparams
            options = nvlabs.reference_options(
                net, len(model.labels), hp.get("contain_dontcare_label", False), hp.get("use_instance", False)
            )
            state = nvlabs.to_reference(net)
            commands.append(nvlabs.reference_command(options, str(base), fmt))
        written.append(write(state, dest_dir / f"latest_net_{ref}.pth"))
    return written, commands


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m underpainting.export", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a train.py checkpoint (last.ckpt)")
    p.add_argument("out_dir", nargs="?", help="default: <run>/export")
    p.add_argument("--format", default="underpainting", choices=("underpainting", "junyanz", "nvlabs"))
    p.add_argument(
        "--test-protocol", choices=("paper", "eval"), help="pix2pix at test time (default: the model's)"
    )
    return p


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        _parser().print_usage()
        return 2
    try:
        opts = _parser().parse_args(args)
    except SystemExit as e:  # -h, or a bad flag (argparse has printed why)
        return int(e.code or 0)
    if opts.format == "underpainting":
        for p in export_generators(opts.checkpoint, opts.out_dir, opts.test_protocol):
            print(p)
        return 0
    written, commands = export_reference(opts.checkpoint, opts.out_dir, opts.format, opts.test_protocol)
    for p in written:
        print(p)
    for c in commands:
        print(f"reference: {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
