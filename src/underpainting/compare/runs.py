"""Runs found under a folder, whatever logged them: a run is a folder with `.hydra/config.yaml` (training runs,
multirun trials and `infer.py` runs alike). Each gets its config, the options it chose, its metrics (last and best of
every logged number, from the first source that has it: metrics.json > W&B > TensorBoard > CSV), the protocol behind
its FID/KID, its status, and its pictures (latest sample grid; for inference runs the overview and contact sheets).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from underpainting.compare import readers
from underpainting.metrics.protocol import higher_is_better

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
SAMPLE_TAG_ORDER = ("final", "test", "val", "train")
# Config keys that differ between runs without describing the attempt (paths, logger wiring, label palettes).
IGNORED_KEYS = re.compile(
    r"^(paths\.|hydra\.|run_name$|tags$|task_name$|logger\.|.*(save_dir|dirpath|output_dir|default_root_dir)$"
    r"|(.*\.)?labels\.classes)"
)
CONFIG_GROUPS = ("model", "data", "trainer")
SOURCE_ORDER = ("metrics.json", "wandb", "tensorboard", "csv")


@dataclass
class Metric:
    last: float
    best: float
    count: int  # how many values were logged (evaluations, logging steps)
    source: str


@dataclass
class Run:
    path: Path
    name: str  # path relative to the folder searched: unique
    task: str = "train"
    run_name: str = ""
    started: str = ""
    model: str = ""
    experiment: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    metrics: dict[str, Metric] = field(default_factory=dict)
    protocol: dict[str, str] = field(default_factory=dict)  # stage (val/test/final) -> protocol line
    sources: list[str] = field(default_factory=list)
    status: str = "incomplete"
    error: str = ""
    sample: Path | None = None
    sheets: dict[str, Path] = field(default_factory=dict)  # inference: sketch name -> contact sheet
    wandb: dict = field(default_factory=dict)


def _flatten(node, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        out: dict[str, str] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    value = json.dumps(node) if isinstance(node, list) else str(node)
    return {prefix[:-1]: value}


def _yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: not UTF-8 text
        return None


def _latest_sample(run_dir: Path) -> Path | None:
    """The newest grid of the most final kind: final_* > test_* > val_* > train_*."""
    folder = run_dir / "samples"
    if not folder.is_dir():
        return None
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    for tag in SAMPLE_TAG_ORDER:
        tagged = sorted(p for p in files if p.name.startswith(f"{tag}_"))
        if tagged:
            return tagged[-1]
    return sorted(files)[-1] if files else None


def _to_metrics(series: readers.Series, source: str) -> dict[str, Metric]:
    out = {}
    for key, values in series.items():
        finite = [v for _, v in sorted(values, key=lambda sv: sv[0]) if not math.isnan(v)]
        last = sorted(values, key=lambda sv: sv[0])[-1][1]
        best = (max if higher_is_better(key) else min)(finite) if finite else math.nan
        out[key] = Metric(last=last, best=best, count=len(values), source=source)
    return out


def _choices(run_dir: Path) -> dict:
    hydra_cfg = _yaml(run_dir / ".hydra" / "hydra.yaml") or {}
    return ((hydra_cfg.get("hydra") or {}).get("runtime") or {}).get("choices") or {}


def _model_name(task: str, choices: dict, config: dict) -> str:
    if (
        task == "infer"
    ):  # stage 2 is a list of options: Hydra records no choice for it, the config has the names
        stage2 = "+".join(dict.fromkeys(k.split(".")[1] for k in config if k.startswith("stage2.")))
        return f"{choices.get('infer/stage1', '?')} \u2192 {stage2 or 'scenes only'}"
    if choices.get("model"):
        return str(choices["model"])
    target = str(config.get("model._target_", ""))
    return target.rsplit(".", 1)[-1].lower()


def _read_metrics(run: Run) -> None:
    by_source: dict[str, dict[str, Metric]] = {}
    mj = run.path / "metrics.json"
    if mj.is_file():
        try:
            series, run.protocol = readers.read_metrics_json(mj)
            by_source["metrics.json"] = _to_metrics(series, "metrics.json")
        except (OSError, ValueError, KeyError, TypeError) as err:
            run.error = f"unreadable metrics.json: {err}"
    for kind, path in readers.logger_sources(run.path):
        try:
            if kind == "wandb":
                series, info = readers.read_wandb(path)
                run.wandb = info
                if info.get("metrics_protocol") and not run.protocol:
                    run.protocol = {"val": str(info["metrics_protocol"])}
            elif kind == "tensorboard":
                series, hparams = readers.read_tensorboard(path)
                if hparams.get("metrics_protocol") and not run.protocol:
                    run.protocol = {"val": str(hparams["metrics_protocol"])}
            else:
                series = readers.read_csv(path)
        except Exception as err:  # noqa: BLE001 - one unreadable log must not hide the run
            run.error = f"unreadable {kind} log {path.name}: {type(err).__name__}: {err}"
            continue
        by_source.setdefault(kind, {})
        for key, metric in _to_metrics(series, kind).items():
            by_source[kind].setdefault(key, metric)
    for source in SOURCE_ORDER:
        if by_source.get(source):
            run.sources.append(source)
        for key, metric in by_source.get(source, {}).items():
            run.metrics.setdefault(key, metric)


def _status(run: Run) -> None:
    failure = run.path / "failure.json"
    if failure.is_file():
        try:
            info = json.loads(failure.read_text())
            run.status, run.error = "failed", f"{info.get('type', 'error')}: {info.get('message', '')}"
        except ValueError:
            run.status, run.error = "failed", "failure.json is unreadable"
        return
    exit_code = run.wandb.get("exit_code")
    if exit_code not in (None, 0):
        run.status, run.error = "failed", run.error or f"W&B recorded exit code {exit_code}"
        return
    if run.task == "infer":
        summary = _yaml(run.path / "summary.json")  # JSON is YAML
        if isinstance(summary, list):
            failed = [s for s in summary if not s.get("ok")]
            run.status = "done" if not failed else "partly failed"
            if failed:
                run.error = f"{len(failed)} of {len(summary)} sketches failed: {failed[0].get('error') or ''}"
        return
    finished = (run.path / "checkpoints" / "last.ckpt").is_file() or any(
        (run.path / "samples").glob("final_*")
    )
    run.status = "done" if finished else ("incomplete" if run.metrics else "no results")


def _infer_metrics(run: Run) -> None:
    """Inference runs log no numbers: count the sketches painted and the time per sketch from summary.json."""
    summary = _yaml(run.path / "summary.json")
    if not isinstance(summary, list) or not summary:
        return
    ok = [s for s in summary if s.get("ok")]
    run.metrics["infer/sketches_ok"] = Metric(len(ok), len(ok), 1, "summary.json")
    run.metrics["infer/sketches_failed"] = Metric(
        len(summary) - len(ok), len(summary) - len(ok), 1, "summary.json"
    )
    if ok:
        seconds = sum(float(s.get("seconds") or 0) for s in ok) / len(ok)
        run.metrics["infer/seconds_per_sketch"] = Metric(seconds, seconds, len(ok), "summary.json")
    run.sources.append("summary.json")


_CHOICE = re.compile(r"\$\{hydra:runtime\.choices\.([^}]+)\}")
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})_(\d{2})-(\d{2})-(\d{2})_?")


def _resolve_choices(value: str, choices: dict) -> str:
    """Hydra saves the config unresolved: `${hydra:runtime.choices.model}` -> the option the run chose."""
    return _CHOICE.sub(lambda m: str(choices.get(m[1], m[0])), value)


def load_run(run_dir: Path, root: Path) -> Run:
    rel = run_dir.relative_to(root).as_posix() if run_dir != root else run_dir.name
    run = Run(path=run_dir, name=rel)
    raw = _yaml(run_dir / ".hydra" / "config.yaml")
    if not isinstance(raw, dict):
        run.error, raw = "unreadable .hydra/config.yaml", {}
    choices = _choices(run_dir)
    run.config = {k: _resolve_choices(v, choices) for k, v in _flatten(raw).items()}
    run.overrides = [str(o) for o in (_yaml(run_dir / ".hydra" / "overrides.yaml") or [])]
    run.task = str(raw.get("task_name") or "train")
    run.run_name = run.config.get("run_name", "")
    if not run.run_name or "${" in run.run_name:  # the folder is <time>_<run_name> (Hydra's run.dir pattern)
        run.run_name = _STAMP.sub("", run_dir.name, count=1) or run_dir.name
    run.experiment = str(choices.get("experiment") or "")
    run.model = _model_name(run.task, choices, run.config)
    tags = raw.get("tags") or []
    run.tags = [str(t) for t in (tags if isinstance(tags, list) else [tags])]
    stamp = _STAMP.match(run_dir.name)
    run.started = f"{stamp[1]} {stamp[2]}:{stamp[3]}:{stamp[4]}" if stamp else ""
    _read_metrics(run)
    if run.task == "infer":
        _infer_metrics(run)
        run.sheets = {p.parent.name: p for p in sorted(run_dir.glob("*/contact_sheet.png"))}
    _status(run)
    run.sample = _latest_sample(run_dir)
    return run


def find_runs(root: str | Path) -> list[Run]:
    """Every run folder under `root` (or `root` itself), in path order."""
    root = Path(root)
    dirs = sorted({p.parent.parent for p in root.rglob(".hydra/config.yaml")})
    return [load_run(d, root) for d in dirs]


def config_group(key: str) -> str:
    head = key.split(".", 1)[0]
    return head if head in CONFIG_GROUPS else "other"


def differing_keys(runs: Sequence[Run]) -> list[str]:
    """Config keys whose values are not the same in every run, grouped model, data, trainer, other (overridden
    keys first within a group)."""
    keys = sorted({k for r in runs for k in r.config if not IGNORED_KEYS.match(k)})
    diff = [k for k in keys if len({r.config.get(k, "\u2014") for r in runs}) > 1]
    overridden = {o.split("=", 1)[0].lstrip("+~") for r in runs for o in r.overrides}
    order = {g: i for i, g in enumerate((*CONFIG_GROUPS, "other"))}
    return sorted(diff, key=lambda k: (order[config_group(k)], k not in overridden, k))
