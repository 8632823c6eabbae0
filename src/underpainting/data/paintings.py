"""Style paintings with their label maps and weights, for painters that draw each region of a sketch from every
painting that has its class (the painter, `underpainting.models.nnst`).

A weight is a number (the painting's weight for every class) or a mapping {class name: weight} (others 1), so
`[{grass: 0}, {sky: 0}]` takes the grass only from the second painting and the sky only from the first. Where no
painting has a sketch class, the class follows its `borrow:` list (`conf/labels/landscape.yaml`,
`underpainting.data.correspondences`); where that fails too, it is painted from the whole paintings, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from underpainting.data.correspondences import classes_present, resolve_borrowing
from underpainting.data.labels import LabelSet
from underpainting.errors import DataError

log = logging.getLogger(__name__)

# A painting is read at 4 px per hypercolumn cell and 8 px per relu4_x position: below 32 px its relu4 features are
# a 4x4 grid at best, too few to paint from.
MIN_PAINTING_SIDE = 32


@dataclass
class Painting:
    """One style painting (1, 3, H, W) in [-1, 1], its label map (1, H, W) or None, and its weights."""

    image: torch.Tensor
    labels: torch.Tensor | None
    name: str = "painting"
    weight: float = 1.0  # for classes not in `class_weights`
    class_weights: dict[int, float] = field(default_factory=dict)

    def weight_for(self, cls: int) -> float:
        return self.class_weights.get(cls, self.weight)


def parse_weight(
    weight: float | Mapping[str, float] | None, labels: LabelSet | None, where: str
) -> tuple[float, dict[int, float]]:
    """A painting's weight entry -> (default weight, {class id: weight}); bad names or values raise a DataError."""
    if weight is None:
        return 1.0, {}
    if isinstance(weight, int | float) and not isinstance(weight, bool):
        if weight < 0:
            raise DataError(f"{where}: a painting weight must be >= 0, got {weight}")
        return float(weight), {}
    if isinstance(weight, Mapping):
        out = {}
        for name, w in weight.items():
            if labels is None or name not in labels.names:
                known = ", ".join(labels.names) if labels is not None else "(no label set)"
                raise DataError(f"{where}: unknown class {name!r} in a painting weight; classes: {known}")
            if not isinstance(w, int | float) or isinstance(w, bool) or w < 0:
                raise DataError(f"{where}: the weight of {name!r} must be a number >= 0, got {w!r}")
            out[labels.id(name)] = float(w)
        return 1.0, out
    raise DataError(f"{where}: a painting weight is a number or {{class: weight}}, got {weight!r}")


def check_painting(image: torch.Tensor, labels: torch.Tensor | None, name: str) -> None:
    """Refuse a painting too small to paint from, and a label map of another size (a programming slip: loaders resize)."""
    h, w = image.shape[-2:]
    if min(h, w) < MIN_PAINTING_SIDE:
        raise DataError(
            f"style painting {name} is {w}x{h} px, smaller than the painter's finest patch allows "
            f"({MIN_PAINTING_SIDE} px on the short side: 4 px per hypercolumn cell, 8 per relu4_x position); use a "
            "larger scan of it"
        )
    if labels is not None and tuple(labels.shape[-2:]) != (h, w):
        raise DataError(
            f"the label map of {name} is {tuple(labels.shape[-2:])}, its painting {(h, w)}: resize it"
        )


def load_painting_labels(
    path: str | Path, labels: LabelSet | None, image: torch.Tensor, painting: str | Path
) -> torch.Tensor:
    """The label map of `painting` (its `image`), resized (nearest, with a warning naming both files) when its size
    differs from the painting's."""
    from underpainting.data.nst import load_label_map

    lab = load_label_map(path, labels)
    if tuple(lab.shape[-2:]) != tuple(image.shape[-2:]):
        log.warning(
            "label map %s is %dx%d, its painting %s %dx%d: resized (nearest) to the painting",
            path, lab.shape[-1], lab.shape[-2], painting, image.shape[-1], image.shape[-2],
        )  # fmt: skip
        lab = load_label_map(path, labels, tuple(image.shape[-2:]))
    return lab


def load_paintings(
    paintings: Sequence[str | Path],
    label_maps: Sequence[str | Path | None] | None,
    labels: LabelSet | None,
    weights: Sequence[float | Mapping[str, float] | None] | None = None,
    key: str = "style",
) -> list[Painting]:
    """Read paintings and their label maps (resized nearest to the painting, with a warning, when their size
    differs); counts that do not match raise a DataError naming `key.paintings` / `key.labels` / `key.weights`."""
    from underpainting.data.images import load_rgb, pil_to_tensor

    paintings = list(paintings)
    label_maps = list(label_maps) if label_maps is not None else [None] * len(paintings)
    if len(label_maps) != len(paintings):
        raise DataError(
            f"{len(paintings)} painting(s) in `{key}.paintings` but {len(label_maps)} label map(s) in `{key}.labels`: "
            "give one label map per painting, in the same order"
        )
    weights = list(weights) if weights is not None else [None] * len(paintings)
    if len(weights) != len(paintings):
        raise DataError(
            f"{len(paintings)} painting(s) in `{key}.paintings` but {len(weights)} `{key}.weights`: give one weight "
            "(a number or {class: weight}) per painting, or none"
        )
    out = []
    for i, (path, lab_path, weight) in enumerate(zip(paintings, label_maps, weights, strict=True)):
        image = pil_to_tensor(load_rgb(path))[None]
        lab = load_painting_labels(lab_path, labels, image, path) if lab_path else None
        default, per_class = parse_weight(weight, labels, f"`{key}.weights[{i}]`")
        check_painting(image, lab, str(path))
        out.append(Painting(image, lab, Path(path).stem, default, per_class))
    return out


@dataclass(frozen=True)
class Source:
    """Where a sketch class is painted from: painting `index`, its pixels of class `cls` (None: all), `weight`."""

    index: int
    cls: int | None
    weight: float


def region_sources(
    sketch_classes: Sequence[int],
    paintings: Sequence[Painting],
    borrow: Mapping[int, Sequence[int]] | None = None,
    names: Sequence[str] | None = None,
    min_fraction: float = 0.005,
) -> dict[int, list[Source]]:
    """{sketch class: its sources}: every painting that has the class (covering at least `min_fraction` of its label
    map, with a positive weight for it); else the first class along its borrow lists that some painting has (logged);
    else the whole paintings (a warning). Without label maps, every class is painted from the whole paintings."""

    def name(k: int | None) -> str:
        return (
            "the whole painting(s)" if k is None else (names[k] if names and k < len(names) else f"class {k}")
        )

    has = [classes_present(p.labels, min_fraction) if p.labels is not None else set() for p in paintings]
    usable = {c for i, p in enumerate(paintings) for c in has[i] if p.weight_for(c) > 0}
    route = resolve_borrowing(sorted(sketch_classes), usable, borrow or {})
    out: dict[int, list[Source]] = {}
    for k in sorted(sketch_classes):
        src = route.get(k, k)
        if src is None:
            whole = [Source(i, None, p.weight) for i, p in enumerate(paintings) if p.weight > 0]
            if not whole:
                raise DataError(f"every painting has weight 0: nothing to paint {name(k)} from")
            if any(p.labels is not None for p in paintings):
                log.warning(
                    "region sources: no painting has %s and its borrow chain finds none: painted from the whole "
                    "painting(s); add it to a label map or to `labels.borrow`", name(k),
                )  # fmt: skip
            out[k] = whole
            continue
        out[k] = [
            Source(i, src, p.weight_for(src))
            for i, p in enumerate(paintings)
            if src in has[i] and p.weight_for(src) > 0
        ]
        via = "" if src == k else f" (borrows {name(src)})"
        log.info(
            "region sources: %s%s <- %s", name(k), via, ", ".join(paintings[s.index].name for s in out[k])
        )
    return out


def source_pixels(
    sources: Sequence[Source], paintings: Sequence[Painting]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (3, N) pixels a region is painted from and their (N,) weights, over every source painting."""
    pix, ws = [], []
    for s in sources:
        p = paintings[s.index]
        flat = p.image[0].reshape(3, -1).float()
        sel = (
            (p.labels.reshape(-1) == s.cls)
            if s.cls is not None
            else torch.ones(flat.shape[1], dtype=torch.bool)
        )
        pix.append(flat[:, sel])
        ws.append(torch.full((int(sel.sum()),), float(s.weight)))
    return torch.cat(pix, dim=1), torch.cat(ws)


def regions_start(
    sketch: torch.Tensor,
    paintings: Sequence[Painting],
    sources: Mapping[int, Sequence[Source]],
    noise: float = 0.1,
    seed: int = 0,
) -> torch.Tensor:
    """(1, 3, H, W): each sketch region filled with the weighted mean colour of its sources, plus Gaussian noise of
    std `noise` (the doodle's `init: regions`, `underpainting.data.doodle.doodle_start`, with per-class sources)."""
    h, w = sketch.shape[-2:]
    start = torch.zeros(1, 3, h, w)
    for k, srcs in sources.items():
        pix, wts = source_pixels(srcs, paintings)
        if pix.shape[1]:
            start[0][:, sketch[0] == k] = ((pix @ wts) / wts.sum()).view(3, 1)
    g = torch.Generator().manual_seed(int(seed))
    return (start + noise * torch.randn(1, 3, h, w, generator=g)).clamp(-1, 1)
