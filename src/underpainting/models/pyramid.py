"""The schedule of a picture optimised coarse to fine (NST and the doodle, the painter): `pyramid` is a list of
`{edge: px, steps}` scales and one optimiser step is one Trainer step, so loggers, sample grids, checkpoints and
resume work as for every other run. The modules give `image` (the parameter), `optimizer_factory`,
`enter_level(level)`, `_step(optimizer, backward, step)`, `output()` and `result_name`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import yaml

from underpainting.data.images import tensor_to_pil


class CoarseToFine:
    """Mixin before `pl.LightningModule`: the step -> scale bookkeeping, the loop without a Trainer (`optimise`)
    and the Trainer hook that enters each new scale with a fresh optimiser."""

    pyramid: list[dict[str, int]]
    level: int
    result_name: str  # the result's folder under the run folder, and its record's key (`<name>_result`)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory([self.image])

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

    def save_result(self, run_dir: str | Path, config: Mapping | None = None) -> Path:
        """Write the result at full resolution as `<run_dir>/<result_name>/final.png` and beside it `final.yaml`:
        `config` (the resolved run config, from `callbacks.result.SaveResult`; None: this module's hyperparameters)
        with the final losses and size."""
        directory = Path(run_dir) / self.result_name
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "final.png"
        out = self.output()[0]
        tensor_to_pil(out).save(path)
        config = dict(config) if config is not None else {"model": dict(self.hparams)}
        config[f"{self.result_name}_result"] = {"losses": self.last_losses, "size": list(out.shape[-2:])}
        (directory / "final.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        return path
