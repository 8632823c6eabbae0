"""`model.compile=true`: torch.compile of a model's networks, in place.

`nn.Module.compile` swaps the module's call for the compiled one without wrapping it, so parameter names, state-dict
keys (no `_orig_mod.` prefix), optimizers, EMA buffers and DDP see the same module as an eager run: compiled and
plain runs resume from each other's checkpoints, and export writes plain networks. The compile happens in Lightning's
`configure_model` hook (after `setup`, before the strategy wraps the module), so building a model from a config (export,
inference) never compiles anything.
"""

from __future__ import annotations

import os
import shutil

import torch
from torch import nn

from underpainting.errors import ConfigError

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def check_compile_options(mode: str, backend: str) -> None:
    """Fail at construction, naming the key, instead of at the first training step."""
    if mode not in MODES:
        raise ConfigError(
            f"model.compile_mode={mode!r} is not a torch.compile mode; use one of {', '.join(MODES)}"
        )
    backends = torch._dynamo.list_backends(exclude_tags=())
    if backend not in backends:
        raise ConfigError(
            f"model.compile_backend={backend!r} is not a torch.compile backend; available: {', '.join(backends)} "
            "(inductor is the one that makes training faster)"
        )


def _check_compiler(backend: str, device: torch.device) -> None:
    """Inductor writes C++ for CPU kernels: without a compiler the first step dies in a long traceback."""
    if backend != "inductor" or device.type != "cpu":
        return
    if not any(shutil.which(c) for c in (os.environ.get("CXX") or "g++", "g++", "c++", "clang++")):
        raise ConfigError(
            "model.compile=true on the CPU needs a C++ compiler for inductor's kernels (g++, c++ or clang++ on "
            "PATH, or CXX=...): install one (e.g. `apt-get install g++`) or set model.compile=false"
        )


class CompiledNetworks:
    """LightningModule mixin (before `pl.LightningModule`): `configure_model` compiles the networks named by
    `compiled_networks()` when the model was built with `compile=True`."""

    def init_compile(self, enabled: bool, mode: str = "default", backend: str = "inductor") -> None:
        if enabled:
            check_compile_options(mode, backend)
        self._compile_options = {"mode": mode, "backend": backend} if enabled else None

    def compiled_networks(self) -> dict[str, nn.Module]:
        """The networks that run every step; override where some are built late (VGG losses in `setup`)."""
        raise NotImplementedError

    def configure_model(self) -> None:
        options = getattr(self, "_compile_options", None)
        if options is None:
            return
        device = self.trainer.strategy.root_device if self._trainer is not None else self.device
        _check_compiler(options["backend"], device)
        for net in self.compiled_networks().values():
            if getattr(net, "_compiled_call_impl", None) is None:  # fit then test: compile once
                net.compile(**options)
