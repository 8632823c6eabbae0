"""Stop a diverged run early, with a message that says where to look, and never checkpoint its state.

A GAN whose learning rate or loss weight is wrong goes to nan (or to 1e15) within a few steps and then trains on
garbage for days; a checkpoint written after that replaces the last good one. The guard keeps a per-term record of
the first bad step on the device (no host sync per step), looks at it every `check_every_n_steps` steps (default:
the trainer's `log_every_n_steps`) and before every checkpoint write, and raises `TrainingDiverged` - the run stops,
exits non-zero, and the last good checkpoint stays.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from underpainting.errors import TrainingDiverged

# Module attributes holding partial optimisers -> their config key under `model.`.
OPTIMIZER_KEYS = {
    "optimizer_G": "optimizer_G",
    "optimizer_D": "optimizer_D",
    "optimizer_factory": "optimizer",
}


class DivergenceGuard(Callback):
    """Args:
    max_loss: a logged loss term above this (in absolute value) counts as diverged, like nan/inf; None: only
        non-finite values. GAN terms here stay below ~1e3; NST reports its normalised objective.
    check_every_n_steps: training steps (batches) between checks; None: `trainer.log_every_n_steps`.
    min_loss_scale: fp16 only: a GradScaler scale below this means the gradients overflow even unscaled (DeepSpeed's
        `min_loss_scale` default, 1); None: not watched.
    loss_scale_patience: checks in a row with the scale below `min_loss_scale` before the run stops.
    """

    def __init__(
        self,
        max_loss: float | None = 1.0e6,
        check_every_n_steps: int | None = None,
        min_loss_scale: float | None = 1.0,
        loss_scale_patience: int = 3,
    ) -> None:
        self.max_loss = max_loss
        self.check_every_n_steps = check_every_n_steps
        self.min_loss_scale, self.loss_scale_patience = min_loss_scale, loss_scale_patience
        self._names: list[str] = []
        self._first: torch.Tensor | None = (
            None  # (T,) global step at which each term first went bad, -1: never
        )
        self._value: torch.Tensor | None = None  # (T,) the value it had then
        self._batches = 0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._every = self.check_every_n_steps or trainer.log_every_n_steps or 1
        self._names, self._first, self._value, self._batches = [], None, None, 0
        self._low_scale_checks, self._scale = 0, None
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        self._scaler = scaler if scaler is not None and scaler.is_enabled() else None

    # ----------------------------------------------------------------------------- record (device only)
    @torch.no_grad()
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        terms = {
            k: v for k, v in (outputs or {}).items() if torch.is_tensor(v) and v.numel() == 1 and k != "loss"
        }
        if terms:
            self._record(terms, trainer.global_step)
        if self._scaler is not None and (scale := self._scaler._get_scale_async()) is not None:
            pl_module.log("amp/loss_scale", scale.detach().clone(), on_step=True, on_epoch=False)
        self._batches += 1
        if self._batches % self._every == 0:
            self._watch_loss_scale()
            self.check(trainer, pl_module)

    def _watch_loss_scale(self) -> None:
        """One host read of the scale per check; counts the checks in a row that found it below the bound."""
        if self._scaler is None or self.min_loss_scale is None:
            return
        self._scale = self._scaler.get_scale()
        self._low_scale_checks = self._low_scale_checks + 1 if self._scale < self.min_loss_scale else 0

    def _scale_stalled(self) -> bool:
        return self._low_scale_checks >= self.loss_scale_patience

    def _record(self, terms: dict[str, torch.Tensor], step: int) -> None:
        if list(terms) != self._names:  # first step, or the model logs other terms now: start over
            self._check_local_and_raise(None)
            self._names = list(terms)  # the model's order: generator terms before the totals and D's
            like = terms[self._names[0]]
            self._first = torch.full((len(self._names),), -1, dtype=torch.long, device=like.device)
            self._value = torch.zeros(len(self._names), dtype=torch.float32, device=like.device)
        values = torch.stack([terms[n].detach().float().reshape(()) for n in self._names])
        bad = ~torch.isfinite(values)
        if self.max_loss is not None:
            bad |= values.abs() > self.max_loss
        new = bad & (self._first < 0)
        self._first = torch.where(new, torch.full_like(self._first, step), self._first)
        self._value = torch.where(new, values, self._value)

    # ----------------------------------------------------------------------------- check (one sync)
    def _local_bad(self) -> bool:
        losses = self._first is not None and bool((self._first >= 0).any())
        return losses or self._scale_stalled()

    def _check_local_and_raise(self, trainer: pl.Trainer | None) -> None:
        if self._local_bad():
            raise TrainingDiverged(self._message(trainer))

    def check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Raise `TrainingDiverged` if any rank has seen a bad loss since the run (re)started."""
        bad = trainer.strategy.reduce_boolean_decision(self._local_bad(), all=False)
        if bad:
            raise TrainingDiverged(self._message(trainer, pl_module))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer, pl_module)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.check(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        """Called before the file is written: a diverged state never reaches the disk."""
        self.check(trainer, pl_module)
        floats = [(k, v) for k, v in checkpoint.get("state_dict", {}).items() if v.is_floating_point()]
        finite = torch.stack([torch.isfinite(v).all() for _, v in floats]).all() if floats else True
        if not trainer.strategy.reduce_boolean_decision(not bool(finite), all=False):
            return
        bad = [k for k, v in floats if not torch.isfinite(v).all()]
        raise TrainingDiverged(
            f"training diverged before step {trainer.global_step}: the weights hold nan/inf ({len(bad)} tensors, "
            f"first {', '.join(bad[:3])}) although the logged losses were finite; no checkpoint was written. "
            f"{_hints(trainer, pl_module, self.max_loss)}"
        )

    # ----------------------------------------------------------------------------- message
    def _message(self, trainer: pl.Trainer | None, pl_module: pl.LightningModule | None = None) -> str:
        if self._scale_stalled() and not (self._first is not None and bool((self._first >= 0).any())):
            return (
                f"training stalled before step {trainer.global_step if trainer else '?'}: the fp16 loss scale has "
                f"stayed below {self.min_loss_scale:g} for {self._low_scale_checks} checks (now {self._scale:.3g}): "
                "the gradients overflow fp16 at nearly every step, so the optimisers skip their updates while the "
                "losses stay finite. Use trainer.precision=bf16-mixed (same range as fp32) or 32-true. "
                f"{_hints(trainer, pl_module, self.max_loss)}"
            )
        if not self._local_bad():
            return "training diverged on another process (rank); see its log. " + _hints(
                trainer, pl_module, self.max_loss
            )
        first, value = self._first.tolist(), self._value.tolist()
        bad = sorted(
            (
                (s, i, n, v)
                for i, (s, n, v) in enumerate(zip(first, self._names, value, strict=True))
                if s >= 0
            )
        )
        step, _, name, val = bad[0]
        what = "is not finite" if not math.isfinite(val) else f"exceeds the bound {self.max_loss:g}"
        others = [n for _, _, n, _ in bad[1:]]
        also = f" (also: {', '.join(others[:6])}{', ...' if len(others) > 6 else ''})" if others else ""
        return (
            f"training diverged at step {step}: the loss term {name} = {val:.4g} {what}{also}. The run stopped "
            f"and wrote no checkpoint from this state. {_hints(trainer, pl_module, self.max_loss)}"
        )


def _hints(trainer: pl.Trainer | None, pl_module: pl.LightningModule | None, max_loss: float | None) -> str:
    keys = []
    if pl_module is not None:
        for attr, key in OPTIMIZER_KEYS.items():
            opt = getattr(pl_module, attr, None)
            if isinstance(opt, functools.partial) and "lr" in opt.keywords:
                keys.append(f"model.{key}.lr (now {opt.keywords['lr']:g})")
        for k, v in dict(getattr(pl_module, "hparams", {})).items():
            if (k.startswith("lambda") or k.endswith("_weight")) and isinstance(v, int | float):
                keys.append(f"model.{k} (now {v:g})")
    if trainer is not None:
        keys.append(
            f"trainer.precision (now {trainer.precision}; fp16 overflows where bf16-mixed or 32-true do not)"
        )
    keys.append(f"callbacks.divergence_guard.max_loss (now {max_loss:g}) if such losses are expected")
    good = _last_good_checkpoint(trainer)
    resume = (
        f" The last good checkpoint is {good}: fix the setting and resume with ckpt_path={good}."
        if good
        else " No checkpoint had been written yet."
    )
    return f"Look at {', '.join(keys)}.{resume}"


def _last_good_checkpoint(trainer: pl.Trainer | None) -> str | None:
    if trainer is None:
        return None
    paths = []
    for cb in trainer.checkpoint_callbacks:
        for p in (getattr(cb, "last_model_path", ""), getattr(cb, "best_model_path", "")):
            if p and Path(p).is_file():
                paths.append(Path(p))
    return str(max(paths, key=lambda p: p.stat().st_mtime)) if paths else None
