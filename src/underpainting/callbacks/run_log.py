"""`train.log` as the run goes: a line every `every_n_steps` training steps (losses, learning rates, speed), the
validation results, every checkpoint written and where a resumed run started - so a log read two days later (or after
a crash) tells what happened, not only the final summary.

The lines go to the run's log file only (Hydra's `<output_dir>/<task>.log` handler), not to the console, where the
progress bar already shows them.
"""

from __future__ import annotations

import logging
import time

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

RUN_LOGGER = "underpainting.run"


def _file_only_logger() -> logging.Logger | None:
    """`underpainting.run` writing to the root logger's file handlers only; None when there is no log file."""
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    if not files:
        return None
    logger = logging.getLogger(RUN_LOGGER)
    logger.handlers = files
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def _fmt(metrics: dict, prefixes: tuple[str, ...]) -> str:
    return ", ".join(
        f"{k}={float(v):.4g}" for k, v in sorted(metrics.items()) if k.startswith(prefixes) and v.numel() == 1
    )


class RunLog(Callback):
    """Args:
    every_n_steps: training steps (batches) between progress lines; None: `trainer.log_every_n_steps`.
    """

    def __init__(self, every_n_steps: int | None = None) -> None:
        self.every_n_steps = every_n_steps
        self.log: logging.Logger | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.log = _file_only_logger() if trainer.is_global_zero else None
        self._every = self.every_n_steps or trainer.log_every_n_steps or 50
        self._batches, self._t0 = 0, time.monotonic()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.log is None:
            return
        resumed = trainer.ckpt_path
        start = f"resumed from {resumed} at step {trainer.global_step}" if resumed else "started"
        self.log.info(
            "training %s: %s, %d batches per epoch, max_epochs=%s, max_steps=%s",
            start,
            type(pl_module).__name__,
            trainer.num_training_batches,
            trainer.max_epochs,
            trainer.max_steps,
        )
        self._t0 = time.monotonic()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._batches += 1
        if self.log is None or self._batches % self._every:
            return
        rate = self._batches / max(time.monotonic() - self._t0, 1e-9)
        self.log.info(
            "step %d epoch %d batch %d/%s (%.3g batches/s): %s",
            trainer.global_step,
            trainer.current_epoch,
            batch_idx + 1,
            trainer.num_training_batches,
            rate,
            _fmt(trainer.callback_metrics, ("train/", "lr/")),
        )

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.log is not None and not trainer.sanity_checking:
            metrics = _fmt(trainer.callback_metrics, ("val/",))
            self.log.info(
                "validation after step %d (epoch %d): %s", trainer.global_step, trainer.current_epoch, metrics
            )

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.log is not None:
            self.log.info("test: %s", _fmt(trainer.callback_metrics, ("test/",)))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.log is not None:
            self.log.info(
                "training ended at step %d (epoch %d) after %.1f min",
                trainer.global_step,
                trainer.current_epoch,
                (time.monotonic() - self._t0) / 60,
            )
