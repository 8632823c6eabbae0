"""Inference entry point: painted sketches -> (scenes: SPADE / pix2pix) -> paintings (the painter by default;
CycleGAN, semantic NST, the doodle).

`python infer.py input=examples/sketches style.painting=p.jpg style.labels=p_labels.png` (the painter) or
`python infer.py input=examples/sketches infer/stage1=spade 'infer/stage2=[cyclegan]' stage1.checkpoint=<spade
last.ckpt> stage2.cyclegan.checkpoint=<ckpt>` writes, per sketch, every intermediate and final image, the resolved config and a contact sheet, plus an overview
sheet across sketches. Exit status: 0 when every sketch worked, 1 on a configuration error or any failed sketch.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from underpainting.data.images import DEFAULT_MAX_PIXELS, open_image, pixel_limit
from underpainting.data.labels import LabelSet
from underpainting.data.synthetic import SyntheticLandscapes
from underpainting.errors import DataError, UserError, exit_on_user_error
from underpainting.inference.pipeline import SketchPipeline, SketchResult, list_sketches
from underpainting.inference.stages import Style

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_style(cfg: DictConfig, labels: LabelSet, needs_labels: bool = True) -> Style:
    """The style painting and its label map from `style.*` (or several: `style.paintings=[...]` with
    `style.labels=[...]`); without a painting, a synthetic Van Gogh-like one. One painting's label map is required
    only when a stage matches regions (`needs_labels`: semantic NST, the doodle)."""
    s = cfg.style
    if s.get("paintings"):
        from underpainting.data.paintings import load_paintings

        if s.get("painting"):
            raise UserError(
                "set either `style.painting` (one) or `style.paintings=[a.jpg,b.jpg]` (several), not both"
            )
        maps = s.get("labels")
        if isinstance(maps, str):
            raise UserError(
                f"`style.paintings` has {len(s.paintings)} painting(s): give `style.labels` as a list too, one label "
                "map per painting in the same order: style.labels=[a_labels.png,b_labels.png]"
            )
        weights = OmegaConf.to_container(s.weights) if s.get("weights") is not None else None
        paintings = load_paintings(
            list(s.paintings), list(maps) if maps is not None else None, labels, weights
        )
        first = paintings[0]
        return Style(first.image, first.labels, " + ".join(p.name for p in paintings), tuple(paintings))
    if s.get("painting"):
        from underpainting.data.images import load_rgb, pil_to_tensor
        from underpainting.data.paintings import Painting, load_painting_labels, parse_weight

        image = pil_to_tensor(load_rgb(s.painting))[None]
        if not s.get("labels"):
            if not needs_labels:
                return Style(image, None, Path(s.painting).stem)
            raise UserError(
                f"`style.painting`={s.painting} needs its label map for semantic transfer: set `style.labels` "
                "(a sketch of the painting in the palette, or an 8-bit PNG of class ids), or use plain Gram "
                "transfer without one (`stage2.nst.semantic=false`)"
            )
        if not isinstance(s.labels, str):
            raise UserError(
                "`style.painting` is one painting: `style.labels` is its one label map (a path, not a list)"
            )
        lab = load_painting_labels(s.labels, labels, image, s.painting)
        if s.get("weights") is not None:
            weight, per_class = parse_weight(s.weights, labels, "`style.weights`")
            painting = Painting(image, lab, Path(s.painting).stem, weight, per_class)
            return Style(image, lab, Path(s.painting).stem, (painting,))
        return Style(image, lab, Path(s.painting).stem)
    scene = SyntheticLandscapes(labels, int(s.synthetic_size))(int(s.synthetic_seed))
    return Style(scene.painting[None], scene.labels[None], f"synthetic {s.synthetic_seed}")


def _uses_style(stages) -> bool:
    return any(getattr(st, "uses_style", False) for st in stages)


def _needs_style_labels(stages) -> bool:
    """Semantic stages match regions of the sketch to regions of the painting: they need its label map."""
    return any(getattr(st, "uses_style", False) and getattr(st, "semantic", False) for st in stages)


def input_images(cfg: DictConfig, sketches: list[Path]) -> list[tuple[str, Path]]:
    """(key, path) of every image this run reads besides the checkpoints: sketches, style painting and labels..."""
    named = [("style.painting", cfg.style.get("painting")), ("style.labels", cfg.style.get("labels"))]
    named += [("style.paintings", cfg.style.get("paintings"))]
    named += [("xray", cfg.get("xray")), ("stage1.style_image", (cfg.get("stage1") or {}).get("style_image"))]
    paths = [
        (k, v) for k, value in named if value for v in (value if isinstance(value, ListConfig) else [value])
    ]
    return [("input", p) for p in sketches] + [(k, Path(str(v)).expanduser()) for k, v in paths]


def check_inputs(cfg: DictConfig, sketches: list[Path]) -> None:
    """Every input image's size from its header against `max_pixels`, before any checkpoint is loaded or anything
    decoded. With `on_bad_sketch=skip` a bad sketch is left to the pipeline (reported, the others painted) unless
    none is usable."""
    problems = []
    for key, path in input_images(cfg, sketches):
        try:
            with open_image(path):
                pass
        except DataError as e:
            problems.append((key, f"`{key}`: {e}"))
    bad_sketches = [m for k, m in problems if k == "input"]
    fatal = [m for k, m in problems if k != "input"]
    if cfg.on_bad_sketch == "error" or len(bad_sketches) == len(sketches):
        fatal += bad_sketches
    if fatal:
        raise DataError("; ".join(fatal))


def build_loggers(cfg: DictConfig) -> list:
    """Lightning loggers from `logger=...` (W&B / TensorBoard), so inference runs sit beside training runs."""
    group = cfg.get("logger") or {}
    if "wandb" in group:
        from underpainting.tracking.wandb_mode import configure_wandb_mode

        configure_wandb_mode()
    loggers = []
    for lc in group.values():
        if isinstance(lc, DictConfig) and "_target_" in lc:
            with open_dict(lc):
                if "group" in lc:
                    lc.group = "infer"
            loggers.append(instantiate(lc))
    return loggers


def make_sheet_logger(loggers: list):
    if not loggers:
        return None
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    def log_sheet(name: str, image) -> None:
        for logger in loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=f"infer/{name}", images=[image])
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(
                    f"infer/{name}", np.asarray(image.convert("RGB")), 0, dataformats="HWC"
                )

    return log_sheet


def run(cfg: DictConfig, on_stage: Callable[[str, int, int], None] | None = None) -> list[SketchResult]:
    """Check the configuration and checkpoints, then process every sketch; returns one result per sketch.
    `on_stage(name, done, total)` hears each stage start (the app's progress bar). Images over `max_pixels` are
    refused (conf/infer.yaml says why the default)."""
    with pixel_limit(int(cfg.get("max_pixels", DEFAULT_MAX_PIXELS) or 0), "max_pixels"):
        return _paint(cfg, on_stage)


def _paint(cfg: DictConfig, on_stage: Callable[[str, int, int], None] | None) -> list[SketchResult]:
    if cfg.get("seed") is not None:
        torch.manual_seed(int(cfg.seed))
    labels: LabelSet = instantiate(cfg.labels)
    files, ignored = list_sketches(cfg.input)
    for p in ignored:
        log.warning("ignoring %s: not an image file extension", p)
    check_inputs(cfg, files)
    stage1 = instantiate(cfg.stage1)
    stage2 = {name: instantiate(c) for name, c in (cfg.get("stage2") or {}).items()}
    if not stage2:
        log.warning("no stage-2 method configured (`infer/stage2=[cyclegan,nst]`): writing scenes only")
    device = pick_device(cfg.device)
    uses_style = _uses_style(stage2.values()) or cfg.style.get("painting") or cfg.style.get("paintings")
    style = load_style(cfg, labels, _needs_style_labels(stage2.values())) if uses_style else Style()
    out_dir = Path(cfg.paths.output_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    loggers = build_loggers(cfg)
    pipeline = SketchPipeline(
        stage1, stage2, labels, out_dir, style=style, decode=cfg.decode, on_bad_sketch=cfg.on_bad_sketch,
        sheet_max_side=cfg.sheet.max_side, overview_cell=cfg.sheet.overview_cell, config=resolved,
        on_sheet=make_sheet_logger(loggers), on_stage=on_stage,
    )  # fmt: skip
    pipeline.setup(device)
    out_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out_dir / "config.yaml", resolve=True)
    for logger in loggers:
        logger.log_hyperparams(resolved)
    try:
        results = pipeline.run(files, progress=cfg.progress)
    finally:
        for logger in loggers:
            logger.finalize("success")
        if loggers and "wandb" in (cfg.get("logger") or {}):
            import wandb

            wandb.finish()
    return results


def report(results: list[SketchResult], out_dir: Path) -> str:
    lines = [f"run directory: {out_dir}"]
    for r in results:
        lines.append(f"  {'ok    ' if r.ok else 'FAILED'} {r.path.name}: {r.sheet if r.ok else r.error}")
    if (out_dir / "overview.png").is_file():
        lines.append(f"overview:      {out_dir / 'overview.png'}")
    failed = sum(not r.ok for r in results)
    lines.append(
        f"{len(results) - failed} of {len(results)} sketches painted"
        + (f", {failed} failed" if failed else "")
    )
    return "\n".join(lines)


@exit_on_user_error
def main(cfg: DictConfig) -> int:
    """Hydra entry: run, print where the contact sheets are; exit status 1 when a sketch failed or on a user error."""
    results = run(cfg)
    text = report(results, Path(cfg.paths.output_dir))
    print(text)
    if not all(r.ok for r in results):
        sys.exit(1)
    return 0
