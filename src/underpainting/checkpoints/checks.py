"""What a checkpoint must be before anything uses it: written by `train.py`, of the model kind asked for, trained on
the same labels, with finite weights that fit the configured networks. Each failure is one WeightsError paragraph
naming the file and the fix, instead of Lightning's traceback or a silently wrong picture.

The model and the label set come from the caller (duck typing: a label set has `.classes` of `.name`/`.rgb`), so
this module needs nothing above `errors`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from underpainting.checkpoints.io import read
from underpainting.errors import WeightsError

# `model=<name>` for each LightningModule (the `_target_` a checkpoint's embedded config names), for messages.
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


def short_target(target: str) -> str:
    return target.rsplit(".", 1)[-1]


def embedded_config(ckpt: Mapping, where: str | Path) -> dict:
    """The run config `train.py` embeds in every checkpoint (`underpainting_config`), beside its `state_dict`."""
    cfg = ckpt.get("underpainting_config")
    if cfg is None or "state_dict" not in ckpt:
        raise WeightsError(
            f"{where} was not written by underpainting's train.py (no embedded config or state_dict)"
        )
    return cfg


def check_target(cfg: Mapping, targets: Sequence[str], where: str, need: str) -> str:
    """The checkpoint's model class, if it is one of `targets`; else an error naming both and `need` (the fix)."""
    target = cfg.get("model", {}).get("_target_", "?")
    if target not in targets:
        raise WeightsError(f"{where} holds a {short_target(target)} checkpoint ({target}), but {need}")
    return target


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


def _classes(labels) -> list[tuple[str, tuple[int, ...]]]:
    """(name, rgb) per class id, of a label set (`.classes`) or of one stored in a checkpoint (`{"classes": [...]}`)."""
    if isinstance(labels, Mapping):
        return [(str(c["name"]), tuple(int(v) for v in c["rgb"])) for c in labels["classes"]]
    return [(c.name, tuple(c.rgb)) for c in labels.classes]


def check_labels(ckpt_labels: Mapping | None, labels, path: str | Path) -> None:
    """A checkpoint trained on another label set would read every sketch wrong: stop, naming both sets."""
    if not ckpt_labels:
        return
    theirs, ours = _classes(ckpt_labels), _classes(labels)
    if theirs == ours:
        return
    diff = next(
        (
            f"id {i}: checkpoint {a[0]!r} {a[1]} vs config {b[0]!r} {b[1]}"
            for i, (a, b) in enumerate(zip(theirs, ours, strict=False))
            if a != b
        ),
        f"the checkpoint has {len(theirs)} classes, the config {len(ours)}",
    )
    raise WeightsError(
        f"{path} was trained with a different label set ({len(theirs)} classes: "
        f"{', '.join(n for n, _ in theirs[:6])}...) than this config's `labels` ({len(ours)} classes: "
        f"{', '.join(n for n, _ in ours[:6])}...); first difference: {diff}. Use the labels it was trained with "
        "(`labels=<name>`) or a checkpoint trained on these."
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


def _fit_problems(sd: Mapping, own: Mapping) -> list[str]:
    """Shapes, missing and unexpected tensors of `sd` against the module's own state dict (EMA averages left out)."""
    own = {k: v for k, v in own.items() if not k.startswith("ema.")}
    sd = {k: v for k, v in sd.items() if not k.startswith("ema.")}
    shapes = [
        (k, tuple(sd[k].shape), tuple(v.shape)) for k, v in own.items() if k in sd and sd[k].shape != v.shape
    ]
    missing, unexpected = [k for k in own if k not in sd], [k for k in sd if k not in own]
    parts = []
    if shapes:
        k, a, b = shapes[0]
        parts.append(f"{len(shapes)} tensors have other shapes (first {k}: {a} in the checkpoint, {b} now)")
    if missing:
        parts.append(f"{len(missing)} of this model's tensors are not in it (first {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} of its tensors are not in this model (first {unexpected[0]})")
    return parts


def check_run_checkpoint(
    path: str | Path, model: nn.Module, model_cfg: Mapping, key: str = "ckpt_path"
) -> None:
    """The checks `infer.py` makes, before `trainer.fit`/`trainer.test` gets `path`: a readable train.py checkpoint
    of this model class, trained on the same labels (`model.labels`, if it has a label set), with finite weights
    that fit the configured networks."""
    path, where = Path(path), f"`{key}`={path}"
    ckpt = read(path)
    cfg = embedded_config(ckpt, where)
    ours = model_cfg.get("_target_", "?")
    theirs = cfg.get("model", {}).get("_target_", "?")
    choice = MODEL_CHOICES.get(theirs)
    check_target(
        cfg,
        [ours],
        where,
        f"this run's model is {short_target(ours)}: "
        + (f"add `model={choice}` (with the data it was trained on), " if choice else "")
        + "or pass a checkpoint of this model",
    )
    if hasattr(getattr(model, "labels", None), "classes"):
        check_labels(cfg.get("labels"), model.labels, path)
    check_finite(ckpt["state_dict"], path)
    if not getattr(model, "strict_loading", True):  # NST: the image's size depends on its pyramid level
        return
    if not (parts := _fit_problems(ckpt["state_dict"], model.state_dict())):
        return
    diff = architecture_differences(cfg["model"], model_cfg)
    fix = (
        "It was trained with "
        + ", ".join(f"model.{k}={a!r} (now {b!r})" for k, a, b in diff[:5])
        + ("..." if len(diff) > 5 else "")
        + ": set those to resume or evaluate it."
        if diff
        else "Use the model settings it was trained with."
    )
    raise WeightsError(f"{where} does not fit the configured networks: {'; '.join(parts)}. {fix}")
