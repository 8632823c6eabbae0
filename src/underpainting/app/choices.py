"""What the page offers: the stage options of `conf/infer/stage{1,2}/` (so a new stage config appears by itself),
the checkpoints under `outputs/train/` that fit each, published names, and style paintings with label maps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig

from underpainting.app.compose import Composer
from underpainting.checkpoints import suggest_checkpoints
from underpainting.data.images import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class StageOption:
    """One `conf/infer/stage{1,2}/<option>.yaml`, as far as the page needs to know it."""

    group: str  # infer/stage1 | infer/stage2
    option: str  # spade
    package: str  # where its node sits: stage1 | stage2.cyclegan
    title: str  # its `name`, as on the contact sheet
    checkpoint_key: str | None  # stage1.checkpoint, stage2.cyclegan.checkpoint; None: no checkpoint
    targets: tuple[str, ...]  # the LightningModules its checkpoints hold
    uses_style: bool  # reads the style painting and its labels (NST, doodle)
    uses_xray: bool  # reads `xray` (nst_xray)
    pyramid: tuple[dict, ...]  # NST-style optimisation levels ({edge, steps}); () when it does not optimise


def _option(group: str, option: str, package: str, node: DictConfig) -> StageOption:
    cls = get_class(node._target_)
    has_ckpt = "checkpoint" in node
    return StageOption(
        group=group,
        option=option,
        package=package,
        title=str(node.get("name", option)),
        checkpoint_key=str(node.get("key") or f"{package}.checkpoint") if has_ckpt else None,
        targets=tuple(node.get("targets") or getattr(cls, "TARGETS", ())),
        uses_style=bool(getattr(cls, "uses_style", False)),
        uses_xray="xray" in node,
        pyramid=tuple(dict(p) for p in node.get("pyramid") or ()),
    )


@dataclass(frozen=True)
class Stages:
    first: dict[str, StageOption]  # by option name
    second: dict[str, StageOption]


def stage_options(composer: Composer) -> Stages:
    """Every stage-1 and stage-2 option, each composed from its config as a job would compose it."""
    first, second = {}, {}
    for option in composer.options("infer/stage1"):
        cfg = composer.compose([f"infer/stage1={option}", "infer/stage2=[]"])
        first[option] = _option("infer/stage1", option, "stage1", cfg.stage1)
    for option in composer.options("infer/stage2"):
        cfg = composer.compose([f"infer/stage2=[{option}]"])
        (package, node), *_ = cfg.stage2.items()
        second[option] = _option("infer/stage2", option, f"stage2.{package}", node)
    return Stages(first, second)


def checkpoint_choices(
    stage: StageOption, train_dir: Path, published: Sequence[str] = (), limit: int = 12
) -> list[tuple[str, str]]:
    """(label, value) pairs: the newest fitting `last.ckpt` files under `train_dir`, then published names."""
    from underpainting.zoo import lookup

    found = suggest_checkpoints(stage.targets, Path(train_dir), limit=limit) if stage.targets else []
    out = [(f"{p.parent.parent.name} (last.ckpt)", str(p)) for p in found]
    for name in published:
        model = lookup(name)
        cached = model is not None and model.path().exists()
        out.append((f"{name} (published{', cached' if cached else ', fetched on first use'})", name))
    return out


@dataclass(frozen=True)
class StylePainting:
    name: str
    painting: Path
    labels: Path


def style_paintings(folder: Path) -> list[StylePainting]:
    """Paintings in `folder` with a label map beside them (`X.jpg` + `X_labels.png`), by absolute path (the page's
    choice values: the API and an upload name the same file the same way whatever the server's working folder)."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        labels = p.with_name(f"{p.stem}_labels.png")
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.stem.endswith("_labels") and labels.is_file():
            out.append(StylePainting(p.stem, p, labels))
    return out


def initial_stages(settings: DictConfig, stages: Stages) -> tuple[str, list[str]]:
    """The first choices: `app.initial`, where `auto` picks the painter and what the quick-start runs trained."""
    train_dir = Path(settings.train_dir)
    names1 = list(stages.first)

    def trained(option: str) -> bool:
        o = stages.first.get(option) or stages.second.get(option)
        return o is not None and bool(o.targets) and bool(suggest_checkpoints(o.targets, train_dir, limit=1))

    s1 = str(settings.initial.stage1)
    if s1 == "auto":
        s1 = "spade" if trained("spade") else ("procedural" if "procedural" in names1 else names1[0])
    s2 = settings.initial.stage2
    if s2 == "auto":  # the painter (docs/paint.md) first, then what the quick-start runs trained
        s2 = [o for o in ("nnst",) if o in stages.second] + (["cyclegan"] if trained("cyclegan") else [])
    return s1, [str(s) for s in s2]
