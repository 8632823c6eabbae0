"""Loop state that stays right across repeated resumes.

Lightning 2.6 resumed from a checkpoint written on an epoch's last batch (`on_train_batch_end`) moves on to the
next epoch without counting it as started (`epoch_progress` ready/started stay behind). A checkpoint written during
that epoch then looks like "epoch finished" and the run resumed from it trains the epoch a second time: a job
killed twice at epoch boundaries ended one epoch late and off the uninterrupted run's weights. The first training
step of such an epoch counts it, as Lightning's `on_advance_start` would have.
"""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback


class ExactResume(Callback):
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int
    ) -> None:
        progress = trainer.fit_loop.epoch_progress
        if progress.current.ready == progress.current.processed:  # a running epoch that was never counted
            progress.increment_ready()
            progress.increment_started()
