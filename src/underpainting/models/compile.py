"""`model.compile=true`: torch.compile of a model's networks, in place.

`nn.Module.compile` swaps the module's call for the compiled one without wrapping it, so parameter names, state-dict
keys (no `_orig_mod.` prefix), optimizers, EMA buffers and DDP see the same module as an eager run: compiled and
plain runs resume from each other's checkpoints, and export writes plain networks. The compile happens in Lightning's
`configure_model` hook (after `setup`, before the strategy wraps the module), so building a model from a config (export,
inference) never compiles anything.

Each new call pattern of a compiled network - gradients on or off, a frozen D (requires_grad), autocast on or off,
an fp32 or bf16 input, another batch size - is one more graph (a recompile). After `torch._dynamo.config.
recompile_limit` (8) of them for one function, torch runs it eagerly from then on, saying so only on its own stderr
handler: `watch_recompile_limit` repeats that through this project's log, with what to do.
"""

from __future__ import annotations

import logging
import os
import shutil

import torch
from torch import nn

from underpainting.errors import ConfigError

log = logging.getLogger(__name__)

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
    """Inductor writes C++ for CPU kernels, and Triton (its GPU kernels) builds a C launcher for each one: without
    a compiler the first step dies in a long traceback."""
    if backend != "inductor":
        return
    if device.type == "cpu":
        if not any(shutil.which(c) for c in (os.environ.get("CXX") or "g++", "g++", "c++", "clang++")):
            raise ConfigError(
                "model.compile=true on the CPU needs a C++ compiler for inductor's kernels (g++, c++ or clang++ on "
                "PATH, or CXX=...): install one (e.g. `apt-get install g++`) or set model.compile=false"
            )
    elif device.type == "cuda":  # Triton's own lookup: $CC, else gcc, else clang
        if not any(shutil.which(c) for c in (os.environ.get("CC") or "gcc", "gcc", "clang")):
            raise ConfigError(
                "model.compile=true on a GPU needs a C compiler: Triton builds a launcher for every kernel with "
                "gcc or clang (on PATH, or CC=...): install one (e.g. `apt-get install gcc`) or set "
                "model.compile=false"
            )


class _RecompileLimitWatch(logging.Handler):
    """Catches torch._dynamo's 'hit config.recompile_limit' warning (its logger does not propagate to ours)."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "hit config." not in message:
            return
        lines = [line.strip() for line in message.splitlines()]
        function = next((line for line in lines if line.startswith("function:")), "function: ?")
        reason = next((line for line in lines if line.startswith("last reason:")), "")
        log.warning(
            "model.compile: torch.compile %s (%s; %s): that network runs eagerly from now on, without the "
            "speed-up. TORCH_LOGS=recompiles lists every reason; docs/performance.md says which calls make new "
            "graphs. Raise torch._dynamo.config.recompile_limit, or set model.compile=false.",
            lines[0].removeprefix("torch._dynamo ").strip(),
            function,
            reason or "no reason given",
        )


_WATCH = _RecompileLimitWatch(logging.WARNING)


def watch_recompile_limit() -> None:
    """Repeat torch's recompile-limit warning through this project's logger (idempotent)."""
    dynamo = logging.getLogger("torch._dynamo.convert_frame")
    if _WATCH not in dynamo.handlers:
        dynamo.addHandler(_WATCH)


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
        watch_recompile_limit()
        for net in self.compiled_networks().values():
            if getattr(net, "_compiled_call_impl", None) is None:  # fit then test: compile once
                net.compile(**options)
