"""Tracking helpers beyond the loggers: failure records for sweeps, and a W&B table of attempts.

- `RecordFailures` (a Hydra callback, enabled by `conf/hparams_search/optuna_base.yaml`): a trial that raises writes
  `failure.json` (exception, traceback, overrides) into its own folder; Hydra then goes on with the next trial, the
  Optuna sweeper records the trial as FAIL, and `underpainting.compare` shows it as failed. At the end of a multirun
  `sweep_summary.json` lists every trial with its status and metrics.
- `log_attempts_table`: one W&B Table row per evaluation input (source | generated | reference, with the run's name
  and per-image LPIPS when available); tables with the same key from several runs line up in the W&B workspace.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from pathlib import Path
from typing import Any

import torch
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def _job_dir(config: DictConfig, job_return: JobReturn | None = None) -> Path | None:
    for cfg in (getattr(job_return, "hydra_cfg", None), config):
        try:
            return Path(cfg.hydra.runtime.output_dir)
        except Exception:  # noqa: BLE001 - absent hydra node or unresolvable: try the next source
            continue
    return None


class RecordFailures(HydraCallback):
    """Write `failure.json` into a failed job's folder, and keep `sweep_summary.json` in the sweep folder up to date
    after every job (Hydra's basic sweeper raises before `on_multirun_end` when a trial failed)."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status == JobStatus.FAILED:
            self._record(config, job_return)
        try:
            hydra_cfg = job_return.hydra_cfg or config
            if str(hydra_cfg.hydra.mode) == "RunMode.MULTIRUN":
                write_sweep_summary(Path(hydra_cfg.hydra.sweep.dir))
        except Exception:  # noqa: BLE001 - a summary must never turn a finished trial into a failed one
            log.warning("could not update the sweep summary", exc_info=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            write_sweep_summary(Path(config.hydra.sweep.dir))
        except Exception:  # noqa: BLE001
            log.warning("could not write the sweep summary", exc_info=True)

    @staticmethod
    def _record(config: DictConfig, job_return: JobReturn) -> None:
        err = job_return._return_value  # the exception Hydra caught; `.return_value` would re-raise it
        out = _job_dir(config, job_return)
        if out is None or not isinstance(err, BaseException):
            return
        record = {
            "type": type(err).__name__,
            "message": str(err),
            "traceback": "".join(traceback.format_exception(type(err), err, err.__traceback__)),
            "overrides": list(job_return.overrides or []),
        }
        out.mkdir(parents=True, exist_ok=True)
        (out / "failure.json").write_text(json.dumps(record, indent=2) + "\n")
        log.error(
            "trial %s failed (%s: %s); recorded in %s", out.name, record["type"], err, out / "failure.json"
        )


def write_sweep_summary(sweep_dir: Path) -> Path | None:
    """`sweep_summary.json`: every trial folder under `sweep_dir` with its overrides, status and metrics."""
    import yaml

    if not sweep_dir.is_dir():
        return None
    trials = []
    for d in sorted(
        (p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=lambda p: (len(p.name), p.name)
    ):
        entry: dict[str, Any] = {
            "trial": d.name,
            "status": "done" if (d / "metrics.json").is_file() else "unknown",
        }
        overrides = d / ".hydra" / "overrides.yaml"
        if overrides.is_file():
            entry["overrides"] = yaml.safe_load(overrides.read_text())
        if (d / "failure.json").is_file():
            f = json.loads((d / "failure.json").read_text())
            entry.update(status="failed", error=f"{f['type']}: {f['message']}")
        if (d / "metrics.json").is_file():
            m = json.loads((d / "metrics.json").read_text())
            entry["metrics"] = {
                f"{s}/{k}": v for s in ("val", "test") if s in m for k, v in m[s]["metrics"].items()
            }
        trials.append(entry)
    out = sweep_dir / "sweep_summary.json"
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(trials, indent=2) + "\n")
    tmp.replace(out)  # atomic: parallel (joblib) trials may write at the same time
    failed = [t["trial"] for t in trials if t["status"] == "failed"]
    log.info("sweep: %d trials so far, failed: %s; %s", len(trials), failed or "none", out)
    return out


def log_attempts_table(
    trainer, columns: dict[str, torch.Tensor], key: str = "attempts", scores: torch.Tensor | None = None
) -> bool:
    """Log `columns` (name -> (B, 3, H, W) in [-1, 1]) as a W&B Table, one row per image. Returns whether it logged."""
    from lightning.pytorch.loggers import WandbLogger

    loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
    if not loggers:
        return False
    import wandb

    from underpainting.data.images import tensor_to_pil

    names = list(columns)
    run_name = loggers[0].experiment.name
    table_cols = ["run", "index", *names] + (["lpips"] if scores is not None else [])
    table = wandb.Table(columns=table_cols)
    n = min(v.shape[0] for v in columns.values())
    for i in range(n):
        row = [run_name, i, *(wandb.Image(tensor_to_pil(columns[c][i])) for c in names)]
        if scores is not None:
            row.append(float(scores[i]))
        table.add_data(*row)
    for lg in loggers:
        lg.experiment.log({key: table, "trainer/global_step": trainer.global_step})
    return True
