"""One painting job: the page's choices -> infer.py overrides -> `underpainting.infer.run` (the same
`SketchPipeline` as `python infer.py`) in `<app.run_dir>/<time>_<stage 1>/`, inputs and config kept beside it."""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import torch
import yaml

from underpainting.app.choices import Stages
from underpainting.app.compose import Composer
from underpainting.data.canvas import resize_ids
from underpainting.data.labels import LabelSet
from underpainting.data.sketch import encode_sketch
from underpainting.errors import UserError

SKETCH_NAME = "canvas"  # the job's sketch: inputs/canvas.png, outputs in <run>/canvas/


@dataclass
class JobRequest:
    """What the page sends: stage options by config name, checkpoints by config key, files by path."""

    stage1: str
    stage2: list[str] = field(default_factory=list)
    checkpoints: dict[str, str] = field(default_factory=dict)  # checkpoint key -> path or published name
    style_painting: str | None = None
    style_labels: str | None = None
    xray: str | None = None
    size: int = 0  # long side of the label map, px; 0: as painted
    steps: int = 0  # NST / doodle steps in all; 0: the configs'
    seed: int | None = None


@dataclass
class JobResult:
    run_dir: Path
    images: dict[str, Path]  # what the contact sheet shows, by file stem: sketch, labels, scene, cyclegan...
    sheet: Path
    archive: Path
    seconds: float


def quote(value: str) -> str:
    """A Hydra override value that stays one string whatever the path holds (spaces, commas, quotes)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def scaled_pyramid(pyramid: tuple[dict, ...], steps: int) -> str:
    """The levels with `steps` shared out in their configured proportions, as a Hydra list override."""
    total = sum(int(p["steps"]) for p in pyramid) or 1
    levels = [f"{{edge:{p['edge']},steps:{max(1, round(int(p['steps']) * steps / total))}}}" for p in pyramid]
    return f"[{','.join(levels)}]"


def job_overrides(request: JobRequest, stages: Stages, sketch: Path) -> list[str]:
    """infer.py overrides for `request` (what a user would type after `python infer.py`)."""
    if request.stage1 not in stages.first:
        raise UserError(
            f"stage 1 {request.stage1!r} is no option of conf/infer/stage1/ ({', '.join(stages.first)})"
        )
    for name in request.stage2:
        if name not in stages.second:
            raise UserError(
                f"stage 2 {name!r} is no option of conf/infer/stage2/ ({', '.join(stages.second)})"
            )
    out = [
        f"infer/stage1={request.stage1}",
        f"infer/stage2=[{','.join(request.stage2)}]",
        f"input={quote(sketch)}",
        "on_bad_sketch=error",
    ]
    chosen = [stages.first[request.stage1], *(stages.second[n] for n in request.stage2)]
    for stage in chosen:
        key = stage.checkpoint_key
        if key and request.checkpoints.get(key):
            out.append(f"{key}={quote(request.checkpoints[key])}")
        if request.steps > 0 and stage.pyramid:
            out.append(f"{stage.package}.pyramid={scaled_pyramid(stage.pyramid, request.steps)}")
    if request.style_painting:
        out.append(f"style.painting={quote(request.style_painting)}")
    if request.style_labels:
        out.append(f"style.labels={quote(request.style_labels)}")
    if request.xray:
        out.append(f"xray={quote(request.xray)}")
    if request.seed is not None:
        out.append(f"seed={int(request.seed)}")
    return out


def new_run_dir(root: Path, stage1: str) -> Path:
    """`<root>/<time>_<stage 1>` (Hydra's run.dir pattern), a suffix when a job started the same second."""
    base = root / f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{stage1}"
    path, k = base, 1
    while path.exists():
        path, k = base.with_name(f"{base.name}-{k}"), k + 1
    path.mkdir(parents=True)
    return path


def _keep(src: str | None, inputs: Path, name: str) -> str | None:
    """Copy an uploaded file into the run's inputs/ (the run stays complete after the upload cache is cleared)."""
    if not src:
        return None
    src_path = Path(src)
    if not src_path.is_file():
        raise UserError(f"{name}: {src} does not exist")
    dst = inputs / f"{name}{src_path.suffix.lower()}"
    shutil.copyfile(src_path, dst)
    return str(dst)


def run_job(
    ids: torch.Tensor,
    request: JobRequest,
    stages: Stages,
    composer: Composer,
    run_root: Path,
    labels: LabelSet,
    on_stage: Callable[[str, int, int], None] | None = None,
) -> JobResult:
    """Paint the label map `ids` (H, W) as `request` says; UserError (the message infer.py prints) when it
    cannot. A failed job keeps its folder (inputs, config, failure.json) and so the compare page shows it."""
    from underpainting.infer import run

    start = time.perf_counter()
    run_dir = new_run_dir(Path(run_root), request.stage1)
    inputs = run_dir / "inputs"
    inputs.mkdir()
    sketch = inputs / f"{SKETCH_NAME}.png"
    encode_sketch(resize_ids(ids, int(request.size)), labels).save(sketch)
    request.style_painting = _keep(request.style_painting, inputs, "style_painting")
    request.style_labels = _keep(request.style_labels, inputs, "style_labels")
    request.xray = _keep(request.xray, inputs, "xray")
    try:
        cfg = composer.job_config(job_overrides(request, stages, sketch), run_dir)
        result = run(cfg, on_stage=on_stage)[0]
    except Exception as err:
        (run_dir / "failure.json").write_text(json.dumps({"type": type(err).__name__, "message": str(err)}))
        raise
    outputs = yaml.safe_load((result.out_dir / "config.yaml").read_text())["outputs"]
    images = {stem: result.out_dir / name for stem, name in outputs.items()}
    archive = run_dir / f"{run_dir.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(run_dir.rglob("*")):
            if p.is_file() and p != archive:
                zf.write(p, p.relative_to(run_dir.parent))
    return JobResult(run_dir, images, result.sheet, archive, time.perf_counter() - start)
