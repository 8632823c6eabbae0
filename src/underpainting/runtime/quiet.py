"""The one place where known third-party noise is silenced. Each entry says what it is and why it is safe to hide:
none of them is something a user of this project can act on. Everything else (Lightning's own advice included)
still prints.

- Lightning's LitLogger advertisement ("Tip: For seamless cloud logging ... litlogger"), printed at every Trainer
  start when no LitLogger is configured: an advertisement, not a diagnosis.
- torch >= 2.10's deprecation of `isinstance(treespec, LeafSpec)`, raised inside Lightning 2.6's own `_pytree.py`:
  only a Lightning release can change it.
- Lightning's "Precision bf16-mixed is not supported by the model summary" note: the summary then counts 32-bit
  bytes, which only affects the printed size estimate.
- Lightning's "no pre-optimization state was saved" warning (manual optimisation with `save_last`): we checkpoint
  after the optimizer steps on purpose, and exact resume from those checkpoints is tested (tests/test_resume.py).
- W&B's "The anonymous setting has no effect" warning: Lightning's WandbLogger always passes `anonymous`; our
  `underpainting.tracking.loggers.WandbLogger` stops passing it (the fix at the source: wandb prints, it does not warn).
"""

from __future__ import annotations

import logging
import warnings

_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*is not supported by the model summary.*",
    r".*no pre-optimization state was saved.*",
)
_LOG_LINES = ("try installing [litlogger]",)
# Lightning's rank_zero_info/warn log through these loggers (fabric's and pytorch's rank_zero modules).
_LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(line in message for line in _LOG_LINES)


_FILTER = _DropLines()


def quiet() -> None:
    """Install the filters above (idempotent; call before the Trainer is built)."""
    for pattern in _WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
