"""Exponential moving average (EMA) of the generator weights, for evaluation, sample grids, export and inference.

Averaging the generator's iterates smooths the oscillation of GAN training (Yazici et al. 2019, "The Unusual
Effectiveness of Averaging in GAN Training": EMA with beta = 0.999; Karras et al. 2018 and Brock et al. 2019 use the
same idea). None of the CycleGAN, pix2pix or SPADE papers does it, so it is off unless `model.ema_decay` is set.

The averages live in the module as buffers (`ema.<net>.<param>`), so they are checkpointed, resumed exactly and moved
with the module; training always uses the raw weights. `GeneratorEMA.swapped()` puts the averages into the networks
for as long as it is active (validation, test, sample grids), and `export.build_model` loads them for good.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import nn

from underpainting.errors import UserError


def _as_buffers(net: nn.Module) -> nn.Module:
    """Storage for the averages of `net`: plain modules with its tree of names holding copies of its parameters as
    buffers, invisible to `parameters()` (optimizers, DDP, parameter counts), with the same state-dict keys as the
    network. Plain `nn.Module`s, not copies of the layers: nothing that rewrites layers by type touches them (a
    batch-norm copy whose weight is a buffer made `convert_sync_batchnorm` - `trainer.sync_batchnorm` - fail)."""
    shadow = nn.Module()
    for name, p in net._parameters.items():
        shadow.register_buffer(name, None if p is None else p.detach().clone())
    for name, b in net._buffers.items():
        persistent = name not in net._non_persistent_buffers_set
        shadow.register_buffer(name, None if b is None else b.detach().clone(), persistent=persistent)
    for name, child in net._modules.items():
        shadow.add_module(name, None if child is None else _as_buffers(child))
    return shadow


class GeneratorEMA(nn.Module):
    """Running averages `avg <- decay * avg + (1 - decay) * w` of the networks' parameters after every generator
    step; their buffers (batch-norm statistics, spectral-norm vectors) are copied, not averaged."""

    def __init__(self, nets: Mapping[str, nn.Module], decay: float) -> None:
        super().__init__()
        if not 0.0 < float(decay) < 1.0:
            raise UserError(f"model.ema_decay must be between 0 and 1 (e.g. 0.999) or null, got {decay}")
        self.decay = float(decay)
        self.shadow = nn.ModuleDict({name: _as_buffers(net) for name, net in nets.items()})
        self._nets = dict(nets)  # not submodules: the owner holds them
        self.active = False

    def _pairs(
        self, name: str
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        net, shadow = self._nets[name], dict(self.shadow[name].named_buffers())
        params = [p for _, p in net.named_parameters()]
        averages = [shadow[k] for k, _ in net.named_parameters()]
        buffers = [b for _, b in net.named_buffers()]
        copies = [shadow[k] for k, _ in net.named_buffers()]
        return params, averages, buffers, copies

    @torch.no_grad()
    def update(self) -> None:
        if self.active:
            raise RuntimeError("GeneratorEMA.update() while the averages are swapped in")
        for name in self._nets:
            params, averages, buffers, copies = self._pairs(name)
            torch._foreach_lerp_(averages, [p.detach() for p in params], 1.0 - self.decay)
            for b, c in zip(buffers, copies, strict=True):
                c.copy_(b)

    @torch.no_grad()
    def _swap(self) -> None:
        for name in self._nets:
            params, averages, _, _ = self._pairs(name)
            for p, a in zip(params, averages, strict=True):
                tmp = p.detach().clone()
                p.copy_(a)
                a.copy_(tmp)
        self.active = not self.active

    @contextlib.contextmanager
    def swapped(self) -> Iterator[None]:
        """The averaged weights in the networks inside the block (re-entrant: a no-op when already swapped)."""
        if self.active:
            yield
            return
        self._swap()
        try:
            yield
        finally:
            self._swap()

    def begin(self) -> None:
        """Swap the averages in until `end()` (validation and test epochs)."""
        if not self.active:
            self._swap()

    def end(self) -> None:
        if self.active:
            self._swap()

    @torch.no_grad()
    def copy_to_networks(self) -> None:
        """Load the averages into the networks for good (export, inference)."""
        for name, net in self._nets.items():
            net.load_state_dict(self.shadow[name].state_dict())

    def fix_checkpoint(self, checkpoint: dict, prefix: str = "ema.shadow.") -> None:
        """A checkpoint written while the averages were swapped in holds them under the networks' names: put
        the training weights back where they belong (saves during validation, e.g. on SIGTERM)."""
        if not self.active:
            return
        sd = checkpoint["state_dict"]
        for name in self._nets:
            start = f"{prefix}{name}."
            for key in [k for k in sd if k.startswith(start)]:
                net_key = f"{name}.{key[len(start) :]}"
                if net_key in sd:
                    sd[key], sd[net_key] = sd[net_key], sd[key]


def adapt_checkpoint(state_dict: dict, ema: GeneratorEMA | None, nets: tuple[str, ...]) -> str | None:
    """Make a checkpoint's state dict fit the EMA setting of the module loading it: start the averages from the
    checkpoint's own weights when it has none (EMA switched on at resume), drop them when EMA is now off. Returns a
    message for the log, or None when nothing changed."""
    has = any(k.startswith("ema.") for k in state_dict)
    if ema is not None and not has:
        for name in nets:
            for key in [k for k in state_dict if k.startswith(f"{name}.")]:
                state_dict[f"ema.shadow.{key}"] = state_dict[key].clone()
        return "the checkpoint has no weight averages: model.ema_decay starts them from its weights"
    if ema is None and has:
        for key in [k for k in state_dict if k.startswith("ema.")]:
            del state_dict[key]
        return "the checkpoint has weight averages but model.ema_decay is null: training goes on without them"
    return None


class AveragedWeights:
    """LightningModule hooks (mix in before `pl.LightningModule`): validation and test epochs run with the averaged
    weights when `self.ema` is set; `averaged_weights()` does the same for any block (sample grids)."""

    ema: GeneratorEMA | None

    def averaged_weights(self) -> contextlib.AbstractContextManager:
        return self.ema.swapped() if self.ema is not None else contextlib.nullcontext()

    def on_validation_epoch_start(self) -> None:
        if self.ema is not None:
            self.ema.begin()

    def on_validation_epoch_end(self) -> None:
        if self.ema is not None:
            self.ema.end()

    on_test_epoch_start = on_validation_epoch_start
    on_test_epoch_end = on_validation_epoch_end
