"""End a run at the next safe point - right after a training step - with one message and a checkpoint to resume from.

Triggers: SIGTERM (what a cluster sends before preemption), SLURM's requeue signal (Lightning's `SLURMEnvironment`
auto-requeue, whose checkpoint is deferred from inside the signal handler - the middle of a step - to the step's end),
`trainer.max_time` and `trainer.max_steps` - and the natural end of training, so `last.ckpt` is always the final
state. A budget or a signal wins over `trainer.min_epochs`: Lightning's own timer
only asks the trainer to stop, which `min_epochs` overrules until the epoch ends (once a batch, with a message each).

The checkpoint is the one `ModelCheckpoint` would write at that step (`last.ckpt`), written through it so its
epoch-end save of the now partial epoch - which would resume at the start of the next epoch - is skipped.

Under DDP every rank must stop at the same step: saving is a collective (the image pools' and random states'
gathers, Lightning's barrier). SLURM's signal reaches each rank at its own moment, so with several ranks and
auto-requeue on the ranks agree after every step (one all-reduce of a flag) - a rank that saved alone hung in its
collectives while the others trained on. SIGTERM is agreed by Lightning itself, the time budget by a broadcast.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import lightning.pytorch as pl
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, Timer
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only

log = logging.getLogger(__name__)


def save_last_checkpoint(trainer: pl.Trainer) -> Path | None:
    """Write `last.ckpt` now, through the ModelCheckpoint that keeps it (None when nothing was trained yet)."""
    if trainer.global_step == 0 or trainer.sanity_checking or trainer.fast_dev_run:
        return None
    keepers = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint) and cb.save_last]
    for mc in keepers:
        if mc._last_global_step_saved != trainer.global_step:
            candidates = mc._monitor_candidates(trainer)
            if mc.monitor is None and mc.save_top_k != 0:  # "keep the newest": the final state is the newest
                mc._save_topk_checkpoint(trainer, candidates)
            mc._save_last_checkpoint(trainer, candidates)
    if keepers:
        return Path(keepers[0].last_model_path)
    path = Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
    trainer.save_checkpoint(path)
    return path


class SafeStop(Callback):
    def __init__(self) -> None:
        self._requeue_signal: int | None = None
        self._requeue_requested = False
        self._done_at: int | None = None

    # ---------------------------------------------------------------------------------------------- setup
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
        if self._timer is not None:
            self._timer._verbose = False  # one message (ours) instead of one per batch
        self._done_at = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        env = trainer._accelerator_connector.cluster_environment
        if isinstance(env, SLURMEnvironment) and env.auto_requeue and env.requeue_signal is not None:
            self._requeue_signal = env.requeue_signal
            signal.signal(env.requeue_signal, self._on_requeue_signal)

    def _on_requeue_signal(self, signum, frame) -> None:
        self._requeue_requested = True  # acted on at the end of the current step

    # ---------------------------------------------------------------------------------------------- triggers
    def _requeue_agreed(self, trainer: pl.Trainer) -> bool:
        """Whether any rank has got the requeue signal (every rank calls this after every step)."""
        if self._requeue_signal is None:
            return False
        if trainer.world_size > 1:
            return trainer.strategy.reduce_boolean_decision(self._requeue_requested, all=False)
        return self._requeue_requested

    def _reason(self, trainer: pl.Trainer) -> str | None:
        if self._requeue_agreed(trainer):
            self._requeue_requested = True
            return "SLURM's requeue signal"
        if (
            trainer.world_size == 1 and trainer.received_sigterm
        ):  # with several ranks: on_exception (all at once)
            return "SIGTERM"
        if 0 < trainer.max_steps <= trainer.global_step:
            return f"trainer.max_steps={trainer.max_steps} reached"
        if self._timer is not None and self._timer._duration is not None:
            over = self._timer.time_elapsed() >= self._timer._duration
            if trainer.strategy.broadcast(over):
                return f"trainer.max_time reached ({self._timer._duration / 60:.4g} min of training)"
        return None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        reason = self._reason(trainer)
        if reason is None or self._done_at == trainer.global_step:
            return
        if self._requeue_requested:
            self._requeue_requested = False
            # Lightning's handler at a safe point: hpc checkpoint in default_root_dir + `scontrol requeue`.
            trainer._signal_connector._slurm_sigusr_handler_fn(self._requeue_signal, None)
            path = Path(trainer._checkpoint_connector.hpc_save_path(trainer.default_root_dir)).parent
            self._report(trainer, reason, f"hpc checkpoint in {path} (found there by the requeued job)")
        else:
            path = save_last_checkpoint(trainer)
            self._report(trainer, reason, f"checkpoint {path}; resume with ckpt_path={path}")
        self._done_at = trainer.global_step
        trainer.should_stop = True
        trainer.fit_loop.min_epochs = 0  # a budget or a signal wins over trainer.min_epochs
        trainer.fit_loop.epoch_loop.min_steps = 0

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """`last.ckpt` is the final state: Lightning's `save_last` only follows the periodic saves, so a run whose
        length is not a multiple of `every_n_train_steps` would otherwise end with an older last.ckpt."""
        if self._done_at != trainer.global_step:
            save_last_checkpoint(trainer)
            self._done_at = trainer.global_step

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException) or self._done_at == trainer.global_step:
            return
        path = save_last_checkpoint(trainer)
        self._done_at = trainer.global_step
        where = (
            f"checkpoint {path}; resume with ckpt_path={path}"
            if path
            else "nothing trained yet, no checkpoint"
        )
        self._report(trainer, "SIGTERM", where)

    @rank_zero_only
    def _report(self, trainer: pl.Trainer, reason: str, where: str) -> None:
        batches = trainer.num_training_batches
        batch = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        log.warning(
            "stopping at step %d (epoch %d, batch %s of %s): %s; %s",
            trainer.global_step,
            trainer.current_epoch,
            batch,
            batches,
            reason,
            where,
        )
