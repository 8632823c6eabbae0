"""Networks back from files: a `train.py` checkpoint's LightningModule, rebuilt from the config it embeds, and a
generator written by `python -m underpainting.export`. Both are built with `hydra.utils.instantiate` from the
`_target_` the file names, so nothing here imports a model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
from hydra.utils import instantiate
from torch import nn

from underpainting.checkpoints.checks import check_finite, check_labels, check_target, embedded_config
from underpainting.checkpoints.io import peek, read
from underpainting.errors import WeightsError


def _with_weights(module: nn.Module, state_dict: dict, path: str | Path) -> nn.Module:
    """`module` with `state_dict` loaded, in eval mode; a mismatch names the file."""
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as e:
        raise WeightsError(f"{path}: weights do not fit the architecture in its own config ({e})") from e
    return module.eval()


def _rebuild(ckpt: dict, cfg: dict, path: str | Path, ema: bool) -> pl.LightningModule:
    """The module `cfg` describes with the checkpoint's weights. Its own `on_load_checkpoint` hook runs first, as
    in Lightning's restore: it fits the state dict to the module (the GAN modules start or drop the generator's
    weight averages there when `model.ema_decay` changed since the checkpoint was written)."""
    check_finite(ckpt["state_dict"], path)
    model = instantiate(cfg["model"])
    model.on_load_checkpoint(ckpt)
    model = _with_weights(model, ckpt["state_dict"], path)
    if ema and (averages := getattr(model, "ema", None)) is not None:
        averages.copy_to_networks()
    return model


def build_model(path: str | Path, ema: bool = True) -> tuple[pl.LightningModule, dict]:
    """The LightningModule a training checkpoint came from, weights loaded, in eval mode; and its run config.
    With `ema` (default) and a checkpoint that has generator weight averages, the networks hold the averages."""
    ckpt = read(path)
    cfg = embedded_config(ckpt, path)
    return _rebuild(ckpt, cfg, path, ema), cfg


def load_trained(path: str | Path, targets: Sequence[str], labels, key: str) -> pl.LightningModule:
    """`build_model` for a stage: the checkpoint (config key `key`) must hold one of the `targets` model classes,
    trained on `labels` (a label set, see `check_labels`)."""
    path = Path(path)
    ckpt = read(path)
    cfg = embedded_config(ckpt, f"{path} (`{key}`)")
    check_target(
        cfg,
        targets,
        f"`{key}`={path}",
        f"this stage needs {' or '.join(targets)}; pass a checkpoint of that model or choose the stage that fits it",
    )
    check_labels(cfg.get("labels"), labels, path)
    return _rebuild(ckpt, cfg, path, ema=True)


def load_exported(path: str | Path) -> tuple[nn.Module, dict]:
    """A network written by `export_generators`, in eval mode, and its payload (name, config, labels)."""
    payload = read(path)
    if "config" not in payload or "state_dict" not in payload:
        raise WeightsError(
            f"{path} is not an exported generator; export one with `python -m underpainting.export`"
        )
    return _with_weights(instantiate(payload["config"]), payload["state_dict"], path), payload


def suggest_checkpoints(
    targets: Sequence[str], root: Path = Path("outputs/train"), limit: int = 3
) -> list[Path]:
    """The newest `last.ckpt` files under `root` whose embedded model is one of `targets` (for error messages and
    the app's choices; an unreadable file is simply not suggested)."""
    if not root.is_dir():
        return []
    found = []
    for p in sorted(root.glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)[
        :20
    ]:
        try:  # memory-mapped: only the embedded config is read, not the weights
            target = peek(p)["underpainting_config"]["model"]["_target_"]
        except (TypeError, KeyError):  # unreadable (None) or not a train.py checkpoint
            continue
        if target in targets:
            found.append(p)
        if len(found) >= limit:
            break
    return found
