"""Learning-rate schedules from the papers, as schedulers whose state checkpoints cleanly (no lambdas)."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class LinearDecay(LRScheduler):
    """Constant for `n_epochs`, then linear decay to zero over `n_epochs_decay` (Zhu et al. 2017 section 4:
    100 + 100 epochs). Stepped once per epoch; the factor matches the reference's
    1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1)."""

    def __init__(
        self, optimizer: Optimizer, n_epochs: int = 100, n_epochs_decay: int = 100, last_epoch: int = -1
    ):
        self.n_epochs, self.n_epochs_decay = n_epochs, n_epochs_decay
        super().__init__(optimizer, last_epoch)

    def factor(self, epoch: int) -> float:
        return max(
            0.0, 1.0 - max(0, epoch + 1 - self.n_epochs) / float(self.n_epochs_decay + 1)
        )  # 0 past the end

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]


def step_after_last_batch(module, batch_idx: int) -> None:
    """Step a manually optimised module's per-epoch schedulers at the end of the epoch's last training step.

    Lightning does the same for automatic optimization (before `on_train_batch_end`). Stepping in
    `on_train_epoch_end` instead left a checkpoint saved on the last batch with the old schedule, and the resumed
    run one epoch behind (lr 3.2e-4 vs 2.4e-4 in the issue's example)."""
    trainer = module.trainer
    if not (trainer.is_last_batch or batch_idx + 1 >= trainer.num_training_batches):
        return
    schedulers = module.lr_schedulers()
    for s in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
        s.step()
