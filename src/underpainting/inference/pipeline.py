"""Sketch -> scene -> paintings, for one sketch or a folder, writing every image and a contact sheet per sketch.

Output layout under the run directory:

    <sketch stem>/sketch.png          the input as given
    <sketch stem>/labels.png          the decoded label map, repainted in the exact palette
    <sketch stem>/scene[_k].png       stage 1 (k-th style when several)
    <sketch stem>/<method>[_k].png    stage 2, one per method
    <sketch stem>/contact_sheet.png   sketch | labels | scene | each painting, a row per style
    <sketch stem>/config.yaml         the resolved config with this sketch's input and outputs
    overview.png, summary.json        across sketches (failures included)
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from PIL import Image

from underpainting.data.images import (
    IMAGE_EXTENSIONS,
    DataError,
    link_problem,
    list_images,
    load_rgb,
    pil_to_tensor,
    tensor_to_pil,
)
from underpainting.data.labels import LabelSet
from underpainting.data.sheets import contact_sheet, overview_sheet
from underpainting.data.sketch import decode_sketch, encode_sketch
from underpainting.errors import UserError
from underpainting.inference.stages import Style

log = logging.getLogger(__name__)


def list_sketches(path: str | Path) -> tuple[list[Path], list[Path]]:
    """(sketch files, ignored files): one file, or the images directly in a folder."""
    path = Path(path).expanduser()
    if (problem := link_problem(path)) is not None:
        raise DataError(f"`input`={path} is {problem}; fix or remove the link")
    if path.is_file():
        return [path], []
    if not path.exists():
        raise DataError(f"input {path} does not exist; set `input=<sketch.png or folder of sketches>`")
    files = list_images(path)
    ignored = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and p.suffix.lower() not in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )
    return files, ignored


@dataclass
class SketchResult:
    path: Path
    ok: bool
    out_dir: Path | None = None
    sheet: Path | None = None
    error: str = ""
    seconds: float = 0.0
    columns: dict[str, torch.Tensor] = field(default_factory=dict)  # first variant, for the overview


class SketchPipeline:
    """Runs stage 1 and every stage-2 method on each sketch; a bad sketch is recorded and skipped
    (`on_bad_sketch='skip'`) or stops the run (`'error'`)."""

    def __init__(
        self,
        stage1,
        stage2: Mapping[str, object],
        labels: LabelSet,
        out_dir: str | Path,
        style: Style | None = None,
        decode: Mapping | None = None,
        on_bad_sketch: str = "skip",
        sheet_max_side: int = 384,
        overview_cell: int = 160,
        config: Mapping | None = None,
        on_sheet: Callable[[str, Image.Image], None] | None = None,
        on_stage: Callable[[str, int, int], None] | None = None,
    ) -> None:
        if on_bad_sketch not in ("skip", "error"):
            raise UserError(f"`on_bad_sketch` must be 'skip' or 'error', got {on_bad_sketch!r}")
        self.stage1, self.stage2, self.labels = stage1, dict(stage2), labels
        self.out_dir, self.style = Path(out_dir), style or Style()
        self.decode, self.on_bad_sketch = dict(decode or {}), on_bad_sketch
        self.sheet_max_side, self.overview_cell = sheet_max_side, overview_cell
        self.config, self.on_sheet = dict(config or {}), on_sheet
        self.on_stage = on_stage  # (what starts now, stages done, stages in all): the app's progress bar
        self._sketch, self._start = "", 0.0  # what `_stage` logs: the sketch at work and when it started

    def setup(self, device: torch.device) -> None:
        """Load every checkpoint first: configuration errors surface before any sketch is touched."""
        for stage in (self.stage1, *self.stage2.values()):
            stage.setup(self.labels, device)

    # ---------------------------------------------------------------------------------------------- one sketch
    def process(self, path: Path) -> SketchResult:
        start = self._start = time.perf_counter()
        self._sketch = path.name
        rgb = load_rgb(path)  # DataError naming the file for truncated / non-image / over-the-limit files
        self._sketch = f"{path.name} ({rgb.width}x{rgb.height})"
        ids = decode_sketch(path, self.labels, **self.decode)  # from the file: class-id PNGs keep their ids
        out = self.out_dir / path.stem
        out.mkdir(parents=True, exist_ok=True)
        rgb.save(out / "sketch.png")
        encode_sketch(ids, self.labels).save(out / "labels.png")
        sketch = pil_to_tensor(rgb)
        self._stage(self.stage1.name, 0, 1 + len(self.stage2))
        scenes = self.stage1(ids, self.style)
        rows, written = [], {"sketch": "sketch.png", "labels": "labels.png"}
        show_style = self.style.image is not None and any(
            getattr(s, "uses_style", False) for s in self.stage2.values()
        )
        for k, scene in enumerate(scenes):
            suffix = f"_{k}" if len(scenes) > 1 else ""
            tensor_to_pil(scene).save(out / f"scene{suffix}.png")
            written[f"scene{suffix}"] = f"scene{suffix}.png"
            row = {"sketch": sketch, "labels": self.labels.colourise(ids)}
            if show_style:  # each painting the stages paint from (several with `style.paintings`)
                for painting in self.style.paintings or [None]:
                    name, image = (
                        (painting.name, painting.image) if painting else (self.style.name, self.style.image)
                    )
                    row[f"style: {name}"] = image[0]
            row[self.stage1.name] = scene
            for i, (name, stage) in enumerate(self.stage2.items()):
                self._stage(f"{getattr(stage, 'name', name)}{suffix}", 1 + i, 1 + len(self.stage2))
                painting = stage(scene, ids, self.style)
                tensor_to_pil(painting).save(out / f"{name}{suffix}.png")
                written[f"{name}{suffix}"] = f"{name}{suffix}.png"
                row[getattr(stage, "name", name)] = painting
            rows.append(row)
        self._stage("contact sheet", 1 + len(self.stage2), 1 + len(self.stage2))
        title = f"{path.name}  {ids.shape[1]}x{ids.shape[0]}"
        sheet = contact_sheet(rows, title=title, max_side=self.sheet_max_side)
        sheet.save(out / "contact_sheet.png")
        cfg = {**self.config, "input": str(path), "outputs": written}
        (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        if self.on_sheet is not None:
            self.on_sheet(path.stem, sheet)
        return SketchResult(path, True, out, out / "contact_sheet.png", seconds=time.perf_counter() - start,
                            columns=rows[0])  # fmt: skip

    def _stage(self, name: str, done: int, total: int) -> None:
        """Say what starts now, in the log (infer.log: a long job shows where it is) and to `on_stage`."""
        elapsed = time.perf_counter() - self._start
        log.info("%s: %s (step %d of %d, %.0f s so far)", self._sketch, name, done + 1, total + 1, elapsed)
        if self.on_stage is not None:
            self.on_stage(name, done, total)

    # ---------------------------------------------------------------------------------------------- many sketches
    def run(self, files: Sequence[Path], progress: bool = True) -> list[SketchResult]:
        from tqdm.auto import tqdm

        results: list[SketchResult] = []
        bar = tqdm(files, desc="sketches", unit="sketch", disable=not progress, dynamic_ncols=True)
        for path in bar:
            bar.set_postfix_str(path.name)
            try:
                results.append(self.process(path))
            except UserError as e:
                if self.on_bad_sketch == "error":
                    raise
                log.error("skipping %s: %s", path, e)
                results.append(SketchResult(path, False, error=str(e)))
            except Exception as e:  # a bug or out-of-memory on one sketch must not lose the others
                if self.on_bad_sketch == "error":
                    raise
                log.error("skipping %s (unexpected %s):\n%s", path, type(e).__name__, traceback.format_exc())
                results.append(SketchResult(path, False, error=f"{type(e).__name__}: {e}"))
        bar.close()
        self.write_summary(results)
        return results

    def write_summary(self, results: Sequence[SketchResult]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        good = [r for r in results if r.ok]
        if good:
            overview = overview_sheet([(r.path.stem, r.columns) for r in good], cell=self.overview_cell)
            overview.save(self.out_dir / "overview.png")
            # `python -m underpainting.compare` shows each run's samples/final_* grid beside training runs' grids.
            (self.out_dir / "samples").mkdir(exist_ok=True)
            overview.save(self.out_dir / "samples" / "final_overview.png")
            if self.on_sheet is not None:
                self.on_sheet("overview", Image.open(self.out_dir / "overview.png"))
        summary = [
            {"sketch": str(r.path), "ok": r.ok, "contact_sheet": str(r.sheet) if r.sheet else None,
             "error": r.error or None, "seconds": round(r.seconds, 2)}
            for r in results
        ]  # fmt: skip
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
