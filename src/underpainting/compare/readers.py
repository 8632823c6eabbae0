"""Metric series from what each logger leaves in a run folder: `metrics.json` (the metrics callback, with the
protocol), CSV (`csv/metrics.csv`), TensorBoard event files, W&B transaction logs (see `wandb_offline`).

A series is {name: [(step, value), ...]} in logging order; non-numeric entries (images, tables) are skipped.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path

import yaml

from underpainting.compare.wandb_offline import find_wandb_runs, read_wandb_run

Series = dict[str, list[tuple[int, float]]]
# Bookkeeping columns every logger writes; not metrics.
NOT_METRICS = {"epoch", "step", "trainer/global_step", "hp_metric", "_step", "_runtime", "_timestamp"}


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _add(series: Series, name: str, step: int, value) -> None:
    v = _number(value)
    if v is not None and name not in NOT_METRICS and not name.startswith(("best/", "_")):
        series.setdefault(name, []).append((step, v))


def read_csv(path: Path) -> Series:
    """Lightning's CSVLogger file: one row per logging call, empty cells for keys not logged in that row."""
    series: Series = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            step = int(float(row.get("step") or 0))
            for k, v in row.items():
                if v not in ("", None):
                    _add(series, k, step, v)
    return series


def read_tensorboard(log_dir: Path) -> tuple[Series, dict]:
    """Scalars of every event file in `log_dir` (one run), and its `hparams.yaml` when Lightning wrote one."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # it logs every event file it opens
    acc = EventAccumulator(str(log_dir), size_guidance={SCALARS: 0})
    acc.Reload()
    series: Series = {}
    for tag in acc.Tags().get("scalars", []):
        for event in acc.Scalars(tag):
            _add(series, tag, int(event.step), event.value)
    hp = log_dir / "hparams.yaml"
    hparams = (yaml.safe_load(hp.read_text()) or {}) if hp.is_file() else {}
    return series, hparams if isinstance(hparams, dict) else {}


def read_metrics_json(path: Path) -> tuple[Series, dict[str, str]]:
    """The metrics callback's history (every evaluation, with its protocol): series and {stage: protocol line}."""
    data = json.loads(path.read_text())
    series: Series = {}
    protocols: dict[str, str] = {}
    entries = data.get("history") or [data[s] for s in ("val", "test", "final") if s in data]
    for entry in entries:
        stage = entry.get("stage", "val")
        for k, v in (entry.get("metrics") or {}).items():
            series.setdefault(f"{stage}/{k}", []).append(
                (int(entry.get("step", 0)), math.nan if v is None else v)
            )
        summary = (entry.get("protocol") or {}).get("summary")
        if summary:
            protocols[stage] = summary
    return series, protocols


def read_wandb(path: Path) -> tuple[Series, dict]:
    """History rows of a W&B transaction log as series, plus the run's info (name, group, tags, config, exit)."""
    run = read_wandb_run(path)
    series: Series = {}
    for i, row in enumerate(run.history):
        step = row.get("trainer/global_step", row.get("_step", i))
        for k, v in row.items():
            _add(series, k, int(_number(step) or 0), v)
    info = {
        "id": run.run_id,
        "name": run.name,
        "group": run.group,
        "job_type": run.job_type,
        "tags": run.tags,
        "exit_code": run.exit_code,
        "metrics_protocol": run.config.get("metrics_protocol"),
    }
    return series, info


def logger_sources(run_dir: Path) -> list[tuple[str, Path]]:
    """(kind, path) of every logger output in a run folder: ("wandb", .wandb file), ("tensorboard", dir), ("csv", file)."""
    found = [("wandb", p) for p in find_wandb_runs(run_dir)]
    found += [("tensorboard", d) for d in sorted({p.parent for p in run_dir.rglob("events.out.tfevents.*")})]
    found += [("csv", p) for p in sorted(run_dir.rglob("metrics.csv")) if "wandb" not in p.parts]
    return found
