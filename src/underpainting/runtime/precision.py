"""Mixed precision that pays on the machine at hand.

bf16 autocast is about 2x fp32 on CPUs with native bf16 matrix instructions (AVX512-BF16, AMX) and 30-50x slower
than fp32 on CPUs without them (AVX2 only: oneDNN emulates it), so a config cannot hard-code it. The quick-start
experiments say `precision: ${fast_precision:${trainer.accelerator}}`; an explicit bf16 on an emulating CPU is kept
but warned about.
"""

from __future__ import annotations

import logging

from omegaconf import OmegaConf

log = logging.getLogger(__name__)


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 convolutions natively on this CPU (its own check)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def fast_precision(accelerator: str = "cpu") -> str:
    """`16-mixed` on CUDA, `bf16-mixed` on a CPU with native bf16, else `32-true`."""
    import torch

    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return "16-mixed"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"


def warn_if_emulated(precision: object, accelerator: str) -> None:
    """One warning when bf16 is asked for on a CPU that only emulates it."""
    import torch

    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if on_cpu and str(precision).startswith("bf16") and not cpu_has_native_bf16():
        log.warning(
            "trainer.precision=%s on a CPU without native bf16 (no AVX512-BF16/AMX; torch reports %s): oneDNN "
            "emulates it, 30-50x slower than fp32. Use trainer.precision=32-true (or the experiments' "
            "${fast_precision:...}, which picks it).",
            precision,
            torch.backends.cpu.get_cpu_capability(),
        )


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("fast_precision"):
        OmegaConf.register_new_resolver("fast_precision", fast_precision)
