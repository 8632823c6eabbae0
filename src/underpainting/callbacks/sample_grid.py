"""Sample grids during training, validation and test: a PNG on disk and an image in every logger."""

from __future__ import annotations

import contextlib
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import move_data_to_device, rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from underpainting.data.sheets import labelled_grid


class SampleGrid(pl.Callback):
    """Renders `pl_module.sample_images(batch)` for a fixed batch of the validation set (the training set when there
    is none) every `every_n_steps` optimizer steps, after each validation epoch and after testing."""

    def __init__(self, dirpath: str, every_n_steps: int = 500, num_samples: int = 4) -> None:
        self.dirpath = Path(dirpath)
        self.every_n_steps, self.num_samples = every_n_steps, num_samples
        self._batch = None

    def _fixed_batch(self, trainer: pl.Trainer):
        if self._batch is None:
            dm = trainer.datamodule
            loader = None
            for name in ("val_dataloader", "train_dataloader"):
                try:
                    loader = getattr(dm, name)()
                    break
                except (AttributeError, NotImplementedError, TypeError, MisconfigurationException):
                    continue
            batch = next(iter(loader))
            self._batch = {k: v[: self.num_samples] if torch.is_tensor(v) else v for k, v in batch.items()}
        return self._batch

    @rank_zero_only
    def render(self, trainer: pl.Trainer, pl_module: pl.LightningModule, tag: str) -> Path:
        batch = move_data_to_device(self._fixed_batch(trainer), pl_module.device)
        was_training = pl_module.training
        pl_module.eval()
        averaged = getattr(pl_module, "averaged_weights", contextlib.nullcontext)  # EMA weights when kept
        with torch.no_grad(), trainer.precision_plugin.forward_context(), averaged():
            columns = pl_module.sample_images(batch)
        pl_module.train(was_training)
        image = labelled_grid(columns)
        step = trainer.global_step
        path = self.dirpath / f"{tag}_step{step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(
                    key=f"samples/{tag}", images=[image], step=step, caption=[" | ".join(columns)]
                )
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"samples/{tag}", np.asarray(image), step, dataformats="HWC")
        return path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0 and trainer.global_step > 0:
            self.render(trainer, pl_module, "train")

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.render(trainer, pl_module, "val")

    def on_train_end(self, trainer, pl_module) -> None:
        self.render(trainer, pl_module, "final")

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self.render(trainer, pl_module, "test")
