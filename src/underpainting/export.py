"""Rebuilding trained networks from checkpoints, safely (`weights_only=True`), and exporting generators alone.

Every checkpoint written by `train.py` carries its resolved config (`underpainting_config`), so a generator can be
rebuilt without the command line that trained it: `python -m underpainting.export <ckpt> [out_dir]` writes one
small file per generator (e.g. `G_BA.pt`, photo -> painting) that `load_generator` reads back.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from torch import nn

from underpainting.errors import UserError, WeightsError


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


def build_model(path: str | Path) -> tuple[pl.LightningModule, dict]:
    """The LightningModule a training checkpoint came from, weights loaded, in eval mode; and its run config."""
    ckpt = load_checkpoint(path)
    cfg = ckpt.get("underpainting_config")
    if cfg is None or "state_dict" not in ckpt:
        raise WeightsError(
            f"{path} was not written by underpainting's train.py (no embedded config or state_dict)"
        )
    return _with_weights(instantiate(cfg["model"]), ckpt["state_dict"], path), cfg


def exportable_names(model: nn.Module) -> tuple[str, ...]:
    return tuple(getattr(model, "exportable", ()))


def export_generators(path: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write each of the model's `exportable` networks as {name, config, labels, state_dict}."""
    model, cfg = build_model(path)
    out_dir = Path(out_dir) if out_dir is not None else Path(path).parent.parent / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in exportable_names(model):
        net = getattr(model, name)
        payload = {
            "name": name,
            "config": cfg["model"][name],
            "labels": cfg.get("labels"),
            "state_dict": net.state_dict(),
        }
        dest = out_dir / f"{name}.pt"
        torch.save(payload, dest)
        written.append(dest)
    return written


def load_generator(path: str | Path) -> tuple[nn.Module, dict]:
    """A network written by `export_generators`, in eval mode, and its payload (config, labels)."""
    payload = load_checkpoint(path)
    if "config" not in payload or "state_dict" not in payload:
        raise WeightsError(
            f"{path} is not an exported generator; export one with `python -m underpainting.export`"
        )
    return _with_weights(instantiate(payload["config"]), payload["state_dict"], path), payload


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m underpainting.export CHECKPOINT [OUT_DIR]")
        return 0 if args else 2
    try:
        for p in export_generators(args[0], args[1] if len(args) > 1 else None):
            print(p)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
