"""The schedule of a picture optimised coarse to fine (NST and the doodle, the painter): `pyramid` is a list of
`{edge: px, steps}` scales and one optimiser step is one Trainer step, so loggers, sample grids, checkpoints and
resume work as for every other run. The modules give `enter_level(level)`, `configure_optimizers()`,
`_step(optimizer, backward, step)` and `output()`."""

from __future__ import annotations

from collections.abc import Callable

import torch


class CoarseToFine:
    """Mixin before `pl.LightningModule`: the step -> scale bookkeeping, the loop without a Trainer (`optimise`)
    and the Trainer hook that enters each new scale with a fresh optimiser."""

    pyramid: list[dict[str, int]]
    level: int

    @property
    def total_steps(self) -> int:
        return sum(p["steps"] for p in self.pyramid)

    def level_at(self, step: int) -> int:
        """The scale that optimisation step `step` (0-based) belongs to."""
        end = 0
        for lvl, p in enumerate(self.pyramid):
            end += p["steps"]
            if step < end:
                return lvl
        return len(self.pyramid) - 1

    def step_in_level(self, step: int) -> int:
        return step - sum(p["steps"] for p in self.pyramid[: self.level_at(step)])

    def optimise(
        self, steps: int | None = None, callback: Callable[[int, dict], None] | None = None
    ) -> torch.Tensor:
        """Run the whole schedule (or `steps` steps) without a Trainer; returns `output()`."""
        optimizer = self.configure_optimizers()
        for step in range(self.total_steps if steps is None else steps):
            level = self.level_at(step)
            if level != self.level:
                self.enter_level(level)
                optimizer = self.configure_optimizers()
            terms = self._step(optimizer, lambda loss: loss.backward(), step)
            self.last_losses = {k: float(v) for k, v in terms.items()}
            if callback is not None:
                callback(step, self.last_losses)
        return self.output()

    def on_train_batch_start(self, batch, batch_idx: int) -> int | None:
        step = self.global_step
        if step >= self.total_steps:
            return -1  # the schedule is done (e.g. resumed after the last scale)
        level = self.level_at(step)
        if level != self.level:
            # a new scale has a new parameter: give the Trainer a fresh optimiser (before the step's hooks attach)
            self.enter_level(level)
            self.trainer.strategy.optimizers = [self.configure_optimizers()]
        return None
