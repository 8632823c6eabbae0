"""Does the training image size fit the networks? Each network is run once on the `meta` device (shapes only: no
memory, no arithmetic) at the configured size, so `data.image_size=30` for a generator that halves twice is one
paragraph naming the key and the nearest sizes that fit, before anything trains, instead of a tensor size mismatch
deep in the first step.

A network is probed with a (batch, C, size, size) input, C taken from its first convolution. A size is refused only
when the network fails there (an error, or a size-preserving generator giving another size) and works at a nearby
size: a network this probe cannot drive (several inputs, a random code) is never refused by it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import nn
from torch.func import functional_call

from underpainting.errors import ConfigError

MIN_SIZE = 16
MULTIPLES = (4, 8, 16, 32, 64, 128, 256)


@dataclass
class Probe:
    ok: bool
    keeps_size: bool = False  # output spatial size == input's
    reason: str = ""


def training_size(cfg: DictConfig) -> tuple[str, int] | None:
    """(key, px) of the square crops the networks train on, or None when the data has no fixed size."""
    data = cfg.get("data") or {}
    if isinstance(data.get("image_size"), int):
        return "data.image_size", int(data.image_size)
    pre = data.get("preprocess") or {}
    if isinstance(pre.get("crop_size"), int) and "crop" in str(pre.get("mode", "")):
        return "data.preprocess.crop_size", int(pre.crop_size)
    return None


def probe(net: nn.Module, size: int, batch: int) -> Probe:
    """Run `net` on the meta device on a (batch, C, size, size) input."""
    conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        return Probe(False, reason="no convolution")
    tensors = {**dict(net.named_parameters()), **dict(net.named_buffers())}
    meta = {k: torch.empty_like(v, device="meta") for k, v in tensors.items()}
    x = torch.empty(batch, conv.in_channels, size, size, device="meta")
    try:
        out = functional_call(net, meta, (x,))
    except Exception as e:  # noqa: BLE001 - any failure means "does not run at this size"
        return Probe(False, reason=str(e).splitlines()[0] if str(e) else type(e).__name__)
    keeps = torch.is_tensor(out) and tuple(out.shape[-2:]) == (size, size)
    return Probe(True, keeps_size=keeps, reason="" if torch.is_tensor(out) else "not one tensor")


def _candidates(size: int) -> list[int]:
    near = {max(MIN_SIZE, m * (size // m) + d) for m in MULTIPLES for d in (0, m)}
    return sorted(near - {size}, key=lambda s: (abs(s - size), s))


def _networks(model: nn.Module) -> Iterable[tuple[str, nn.Module]]:
    return ((n, m) for n, m in model.named_children() if any(True for _ in m.parameters()))


def size_errors(model: nn.Module, size: int, batch: int = 1) -> list[str]:
    """Why each network of `model` cannot train on `size` px crops (empty when all can, or cannot be probed)."""
    errors: dict[str, list[str]] = {}  # message -> networks it applies to (G_AB and G_BA say the same)
    for name, net in _networks(model):
        here = probe(net, size, batch)
        if here.ok and here.keeps_size:
            continue
        reference = probe(net, max(256, -(-size // 256) * 256), batch)  # a size every network here takes
        keeps = reference.ok and reference.keeps_size  # a generator: the output must have the input's size
        if here.ok and not keeps:
            continue
        fits = [
            s for s in _candidates(size) if (p := probe(net, s, batch)).ok and (p.keeps_size or not keeps)
        ]
        if not fits:
            continue  # no nearby size works either: not something this probe can judge
        why = here.reason if not here.ok else "its output has another size than its input"
        below, above = [s for s in fits if s < size], [s for s in fits if s > size]
        near = " or ".join(str(s) for s in below[:1] + above[:1])
        msg = f"({type(net).__name__}) cannot take {size}x{size} px ({why}); sizes that fit: {near}"
        errors.setdefault(msg, []).append(name)
    return [f"{' and '.join(names)} {msg}" for msg, names in errors.items()]


def check_training_size(model: nn.Module, cfg: DictConfig) -> None:
    """ConfigError naming the size key when the configured crops do not fit the model's networks."""
    found = training_size(cfg)
    if found is None:
        return
    key, size = found
    batch = int((cfg.get("data") or {}).get("batch_size") or 1)
    errors = size_errors(model, size, max(1, batch))
    if errors:
        raise ConfigError(
            f"`{key}`={size} does not fit the model: "
            + "; ".join(errors)
            + f". Set `{key}` to a size that fits."
        )
