"""Loggers whose dashboards compare attempts (`conf/logger/`): Lightning's, plus what their comparison views need.

- `TensorBoardLogger`: fills the HParams tab: at the end of the run (`summarise_loggers`), one session with the key
  hyperparameters (the chosen config options, model/data/trainer settings) and the final metrics: the last value
  of every `val/`, `test/`, `final/` and `train/` number and the best `val/` values as `best/val/...`.
- `WandbLogger`: the group is the experiment name (`experiment=...`, else the run name), `job_type` the task
  (train / infer), tags from the config; the best `val/` values go into the run summary as `best/val/...`.

Both keep the last and best of every scalar they are sent (`RunSummary`), so the summary needs no trainer.

A run resumed in its own folder continues the histories there instead of erasing them: `CSVLogger` keeps the rows of
`metrics.csv` (Lightning's deletes the file), TensorBoard adds an event file beside the old ones, and W&B resumes the
run whose id it finds in the folder (`continue_history`).
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger as _CSVLogger
from lightning.pytorch.loggers import TensorBoardLogger as _TensorBoardLogger
from lightning.pytorch.loggers import WandbLogger as _WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, open_dict

from underpainting.metrics.protocol import higher_is_better

METRIC_PREFIXES = ("val/", "test/", "final/", "train/")
BEST_PREFIXES = ("val/",)  # test/final are evaluated once; train losses of a GAN have no "best"
# Config keys that describe an attempt; the rest (paths, logger, callbacks wiring, the label palette) does not.
HPARAM_PREFIXES = ("model.", "data.", "trainer.", "metrics.", "choice/")
HPARAM_KEYS = ("seed", "run_name", "task_name", "tags", "metrics_protocol")
HPARAM_SKIP = ("_target_", "_partial_", "labels.", "plugins", "default_root_dir", "dirpath", "output_dir")


class RunSummary:
    """Last and best value of every scalar metric logged (direction from `protocol.higher_is_better`)."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}
        self.best: dict[str, float] = {}

    def update(self, metrics: dict[str, Any]) -> None:
        for key, value in metrics.items():
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue  # images, tables
            if not key.startswith(METRIC_PREFIXES) or math.isnan(v):
                continue
            self.last[key] = v
            if key.startswith(BEST_PREFIXES) and not key.endswith("_std"):  # a spread has no "best"
                better = max if higher_is_better(key) else min
                self.best[key] = better(v, self.best.get(key, v))

    def final_metrics(self) -> dict[str, float]:
        return {**self.last, **{f"best/{k}": v for k, v in self.best.items()}}


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def key_hparams(params: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """The hyperparameters worth a column: flattened, filtered (see HPARAM_*), lists and None as text."""
    out: dict[str, bool | int | float | str] = {}
    for key, value in _flatten(params).items():
        if not (key.startswith(HPARAM_PREFIXES) or key in HPARAM_KEYS) or any(s in key for s in HPARAM_SKIP):
            continue
        out[key] = value if isinstance(value, bool | int | float | str) else str(value)
    return out


def _hydra_choices() -> dict[str, str]:
    """The config options this run chose (`model=cyclegan`, `experiment=quickstart`...), as `choice/<group>`."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    skip = ("hydra", "paths", "labels", "local")  # bookkeeping, not part of the attempt
    return {f"choice/{k}": str(v) for k, v in choices.items() if not k.startswith(skip) and v is not None}


class TensorBoardLogger(_TensorBoardLogger):
    """Lightning's TensorBoard logger; `summarise()` writes the HParams session (once, at the end of the run)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.summary = RunSummary()
        self._params: dict[str, Any] = {}
        self._summarised = False

    def log_hyperparams(self, params, metrics=None, step=None) -> None:
        from lightning.fabric.utilities.logger import _convert_params

        params = _convert_params(params)
        self._params.update(params)
        super().log_hyperparams(params, metrics, step)  # hparams.yaml; the HParams session comes at the end

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self.summary.update(metrics)
        super().log_metrics(metrics, step)

    @rank_zero_only
    def summarise(self, step: int | None = None) -> None:
        if self._summarised:
            return  # the HParams plugin reads the first session of a run folder: write exactly one
        from torch.utils.tensorboard.summary import hparams

        metrics = self.summary.final_metrics()
        if not metrics:
            metrics = {"hp_metric": math.nan}  # a session without metrics is not shown at all
        for key, value in metrics.items():
            if key not in self.summary.last:  # best/... and hp_metric: the plugin needs a scalar of each
                self.experiment.add_scalar(key, value, step or 0)
        params = key_hparams({**self._params, **_hydra_choices()})
        writer = self.experiment._get_file_writer()
        for summary in hparams(params, metrics):
            writer.add_summary(summary, step)
        self.experiment.flush()
        self._summarised = True


class WandbLogger(_WandbLogger):
    """Lightning's W&B logger with the group defaulting to the run name, and best values in the run summary."""

    def __init__(self, *args, group: str | None = None, name: str | None = None, **kwargs) -> None:
        super().__init__(*args, name=name, group=group or name, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            # Lightning always passes `anonymous`; wandb >= 0.19 prints a deprecation line for any value given.
            self._wandb_init.pop("anonymous", None)
        self.summary = RunSummary()
        self._summarised = False

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self.summary.update(metrics)
        super().log_metrics(metrics, step)

    @rank_zero_only
    def summarise(self, step: int | None = None) -> None:
        if self._summarised or not self.summary.best:
            return
        self.experiment.summary.update({f"best/{k}": v for k, v in self.summary.best.items()})
        self._summarised = True


class _HistoryWriter(ExperimentWriter):
    """Lightning's CSV writer, keeping the `metrics.csv` already in the folder: its rows stay, except those of the
    steps this run logs again (a resumed run repeats the steps after its checkpoint)."""

    def _check_log_dir_exists(self) -> None:  # Lightning's deletes metrics.csv here
        self._kept: list[dict[str, str]] | None = None
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                reader = csv.DictReader(f)
                self._kept = list(reader)
                self.metrics_keys = sorted(reader.fieldnames or [])

    def save(self) -> None:
        if self._kept is not None and self.metrics:
            first = min(int(m["step"]) for m in self.metrics)
            kept = [r for r in self._kept if r.get("step") and int(float(r["step"])) < first]
            self._record_new_keys()
            with self._fs.open(self.metrics_file_path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(kept)
            self._kept = None
        super().save()


class CSVLogger(_CSVLogger):
    """Lightning's CSV logger, appending to the folder's `metrics.csv` instead of deleting it (see `_HistoryWriter`)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> _HistoryWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _HistoryWriter(log_dir=self.log_dir)
        return self._experiment


WANDB_RUN_DIR = re.compile(r"^(?:offline-)?run-\d{8}_\d{6}-(\w+)$")


def previous_wandb_run(save_dir: str | Path) -> str | None:
    """The id of the newest W&B run written under `<save_dir>/wandb/`, or None."""
    root = Path(save_dir) / "wandb"
    runs = (
        sorted(p.name for p in root.glob("*run-*") if p.is_dir() and WANDB_RUN_DIR.match(p.name))
        if root.is_dir()
        else []
    )
    return WANDB_RUN_DIR.match(runs[-1]).group(1) if runs else None


def continue_history(cfg: DictConfig, ckpt_path: str | None) -> None:
    """A resumed run (`ckpt_path` set) logs into the W&B run its folder already holds (same id, `resume=allow`), so
    the dashboard shows one run across requeues; CSV and TensorBoard append by themselves (see the module doc)."""
    wandb = (cfg.get("logger") or {}).get("wandb")
    if not ckpt_path or not isinstance(wandb, DictConfig) or wandb.get("id"):
        return
    run_id = previous_wandb_run(wandb.save_dir)
    if run_id is not None:
        with open_dict(wandb):
            wandb.id, wandb.resume = run_id, "allow"


def summarise_loggers(loggers: list, step: int | None = None) -> None:
    """Call at the end of a run (after fit and test): dashboards get the final and best numbers."""
    for logger in loggers:
        if hasattr(logger, "summarise"):
            logger.summarise(step)
