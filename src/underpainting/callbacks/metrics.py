"""In-loop FID / KID / LPIPS (/ ArtFID) on the validation and test dataloaders.

Every `every_n_epochs` validation runs (and at every test), the callback asks the module for
`eval_pairs(batch) -> {"generated", "reference"[, "source"]}` on each batch, accumulates torchmetrics states (which
synchronise across DDP ranks), and logs `val/fid`, `val/kid`, `val/kid_std`, `val/lpips` (`val/artfid`), or
`test/...`, so `ModelCheckpoint(monitor="val/fid")` and sweep objectives can use them. The protocol line is printed with
every result and written, with the numbers, to `<output_dir>/metrics.json` (read by `underpainting.compare`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only

from underpainting.metrics import protocol
from underpainting.metrics.evaluator import Evaluator
from underpainting.runtime.distributed import leave_process_group_at_exit
from underpainting.tracking.records import log_attempts_table

log = logging.getLogger(__name__)


def _training_rng_untouched() -> contextlib.AbstractContextManager:
    """Evaluation must not move the training RNG: a run that validates and one resumed from a checkpoint written
    before that validation would otherwise draw different dropout/noise afterwards (exact resume)."""
    devices = (
        [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    )
    return torch.random.fork_rng(devices=devices)


def to_patches(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B * nh * nw, C, size, size): non-overlapping patches, the remainder cropped off."""
    b, c, h, w = images.shape
    if h < size or w < size:
        raise ValueError(f"patch_size {size} is larger than the images ({h}x{w})")
    x = images[..., : h - h % size, : w - w % size].unfold(2, size, size).unfold(3, size, size)
    return x.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, size, size)


class MetricsCallback(Callback):
    """See the module docstring.

    Args:
        evaluator: the metrics and their protocol (`Evaluator`: features, LPIPS net, which metrics, KID subsets).
        every_n_epochs: evaluate at validation runs whose epoch satisfies (epoch + 1) % n == 0 (ModelCheckpoint's
            convention; give it the same `every_n_epochs` when it monitors these keys), and always at the last epoch.
        output_dir: where to write metrics.json; None: the trainer's `default_root_dir`.
        on_train_end: also evaluate `eval_pairs(None)` once after training as `final/...` (for models without a
            validation loop, e.g. NST); the values go to the loggers, metrics.json and `trainer.callback_metrics`.
        patch_size: cut every image into non-overlapping patches of this size before the metrics (one NST output
            against its style image becomes a set of patches; SIFID-like, Shaham et al. 2019). The protocol says so.
        table_rows: with a W&B logger, log the first `table_rows` evaluation inputs as a Table
            (source | generated | reference, per-image LPIPS) under `<stage>/attempts`; 0 turns it off.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        every_n_epochs: int = 1,
        output_dir: str | None = None,
        table_rows: int = 8,
        on_train_end: bool = False,
        patch_size: int | None = None,
    ) -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.evaluator = evaluator
        self.every_n_epochs = every_n_epochs
        self.output_dir = output_dir
        self.table_rows = table_rows
        self.evaluate_on_train_end, self.patch_size = on_train_end, patch_size
        self._active = False
        self._first: dict[str, torch.Tensor] | None = None
        self._protocol_logged = False
        self.history: list[dict] = []

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.world_size > 1:
            leave_process_group_at_exit()  # the states are synced over the group: tear it down cleanly at exit

    def state_dict(self) -> dict:
        return {"history": self.history}  # a resumed run keeps the earlier numbers in metrics.json

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict.get("history", []))

    def _due(self, trainer: pl.Trainer) -> bool:
        epoch = trainer.current_epoch + 1
        last = trainer.max_epochs is not None and 0 < trainer.max_epochs <= epoch  # -1: no last epoch
        return not trainer.sanity_checking and (epoch % self.every_n_epochs == 0 or last)

    def _start(self, pl_module: pl.LightningModule) -> None:
        if not hasattr(pl_module, "eval_pairs"):
            raise TypeError(
                f"{type(pl_module).__name__} has no eval_pairs(batch) -> dict(generated=..., reference=...): "
                "the metrics callback needs it (see docs/metrics.md)"
            )
        self.evaluator.to(pl_module.device)
        self.evaluator.reset()
        self._first = None
        self._active = True

    @torch.no_grad()
    def _update(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch) -> None:
        if not self._active:
            return
        # The networks run under the autocast validation_step runs under: outside it, a compiled network met one
        # more variant (autocast off) and recompiled. The metrics' own networks then see fp32 images, as ever.
        with trainer.precision_plugin.forward_context():
            pairs = pl_module.eval_pairs(batch)
        pairs = {
            k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in pairs.items()
        }
        if self.patch_size:
            pairs = {k: to_patches(v, self.patch_size) if torch.is_tensor(v) else v for k, v in pairs.items()}
        self.evaluator.update(pairs["generated"], pairs.get("reference"), pairs.get("source"))
        if self._first is None and self.table_rows > 0:
            order = [k for k in ("source", "generated", "reference") if pairs.get(k) is not None]
            self._first = {k: pairs[k][: self.table_rows].detach() for k in order}

    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not self._active:
            return
        self._active = False
        with _training_rng_untouched():  # KID draws its subsets from the global RNG
            result = self.evaluator.compute()
        self.evaluator.reset()
        values, proto = result["metrics"], result["protocol"]
        if self.patch_size:
            proto.notes.append(f"computed on {self.patch_size}x{self.patch_size} patches, not whole images")
        if stage == "final":  # logging is closed after training: hand the values over directly
            for name, value in values.items():
                trainer.callback_metrics[f"{stage}/{name}"] = torch.tensor(float(value))
            for lg in trainer.loggers:
                lg.log_metrics(
                    {f"{stage}/{k}": float(v) for k, v in values.items()}, step=trainer.global_step
                )
            self._report(
                trainer, stage, values, proto, ", ".join(f"{stage}/{k}={v:.4g}" for k, v in values.items())
            )
            return
        for name, value in values.items():
            # Already reduced over ranks (identical everywhere); sync_dist only averages equal values.
            pl_module.log(f"{stage}/{name}", float(value), on_step=False, on_epoch=True, sync_dist=True)
        summary = ", ".join(f"{stage}/{k}={v:.4g}" for k, v in values.items())
        self._report(trainer, stage, values, proto, summary)

    @rank_zero_only
    def _report(
        self, trainer: pl.Trainer, stage: str, values: dict, proto: protocol.Protocol, summary: str
    ) -> None:
        log.info("%s (epoch %d)\n  protocol: %s", summary, trainer.current_epoch, proto)
        entry = {
            "stage": stage,
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "metrics": {k: (None if math.isnan(v) else v) for k, v in values.items()},
            "protocol": proto.as_dict(),
        }
        self.history.append(entry)
        if not self._protocol_logged:
            for lg in trainer.loggers:
                lg.log_hyperparams({"metrics_protocol": str(proto)})
            self._protocol_logged = True
        out = Path(self.output_dir or trainer.default_root_dir) / "metrics.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        latest = {}
        for e in self.history:
            latest[e["stage"]] = e
        out.write_text(json.dumps({**latest, "history": self.history}, indent=2) + "\n")
        if self._first is not None:
            self._log_table(trainer, stage)

    def _log_table(self, trainer: pl.Trainer, stage: str) -> None:
        first, lp = self._first, self.evaluator.lpips
        scores = None
        if lp is not None and "generated" in first:
            other = first.get("reference" if self.evaluator.lpips_pairs == "reference" else "source")
            if other is not None and other.shape == first["generated"].shape:
                with torch.no_grad():
                    scores = lp.net(first["generated"].float(), other.float()).cpu()
        log_attempts_table(
            trainer, {k: v.cpu() for k, v in first.items()}, key=f"{stage}/attempts", scores=scores
        )

    # validation
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._due(trainer):
            self._start(pl_module)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self._update(trainer, pl_module, batch)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._finish(trainer, pl_module, "val")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.evaluate_on_train_end:
            return
        was_training = pl_module.training
        pl_module.eval()
        self._start(pl_module)
        with getattr(pl_module, "averaged_weights", contextlib.nullcontext)():
            self._update(trainer, pl_module, None)
        self._finish(trainer, pl_module, "final")
        pl_module.train(was_training)

    # test
    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start(pl_module)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._update(trainer, pl_module, batch)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._finish(trainer, pl_module, "test")
