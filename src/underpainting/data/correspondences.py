"""Region correspondences between a sketch and a style painting: which painted class a sketch class borrows when the
painting lacks it (a meadow of flowers painted from the painting's grass, not from its starry sky).

The table lives with the label set (`borrow:` in `conf/labels/landscape.yaml`): each class lists, in order of
preference, the classes it may borrow from; the search follows the lists breadth-first (flower -> grass -> field ...).
A class with nothing to borrow is painted from the whole painting (the global fallback of Gatys et al. 2017 Sec. 4.1).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import torch

from underpainting.errors import UserError

log = logging.getLogger(__name__)

REGION_FALLBACKS = ("borrow", "global")


def parse_borrow_table(
    table: Mapping[str, Sequence[str]], names: Sequence[str]
) -> dict[int, tuple[int, ...]]:
    """{class name: [class names]} -> {class id: (class ids)}; unknown names raise a UserError naming them."""
    index = {n: i for i, n in enumerate(names)}
    out: dict[int, tuple[int, ...]] = {}
    for cls, options in table.items():
        if isinstance(options, str):
            options = [options]
        unknown = [n for n in (cls, *(options or ())) if n not in index]
        if unknown:
            raise UserError(
                f"`labels.borrow.{cls}` names unknown class(es) {unknown}; the label set has {', '.join(names)}"
            )
        out[index[cls]] = tuple(index[n] for n in options or ())
    return out


def resolve_borrowing(
    content_classes: Sequence[int], style_classes: set[int], borrow: Mapping[int, Sequence[int]]
) -> dict[int, int | None]:
    """For every content class the style lacks: the first class along its borrow lists (breadth-first) that the
    style has, or None (paint it from the whole painting). Classes the style has are not in the result."""
    out: dict[int, int | None] = {}
    for k in content_classes:
        if k in style_classes:
            continue
        queue, seen, found = list(borrow.get(k, ())), {k}, None
        while queue:
            c = queue.pop(0)
            if c in seen:
                continue
            seen.add(c)
            if c in style_classes:
                found = c
                break
            queue.extend(borrow.get(c, ()))
        out[k] = found
    return out


def classes_present(labels: torch.Tensor, min_fraction: float = 0.0) -> set[int]:
    """Class ids covering more than `min_fraction` of a (1, H, W) label map (at least one pixel)."""
    ids, counts = labels.unique(return_counts=True)
    frac = counts.float() / labels.numel()
    return {int(i) for i, f in zip(ids.tolist(), frac.tolist(), strict=True) if f > 0 and f >= min_fraction}


def borrow_regions(
    content_labels: torch.Tensor,
    style_labels: Sequence[torch.Tensor | None],
    borrow: Mapping[int, Sequence[int]],
    names: Sequence[str] | None = None,
    mode: str = "borrow",
    min_fraction: float = 0.005,
) -> tuple[torch.Tensor, dict[int, int | None]]:
    """Relabel the content so every class the styles lack takes the class it borrows (mode 'borrow'); classes with
    nothing to borrow, and every missing class in mode 'global', keep their id (the whole painting then paints them).
    Logs which class borrowed which. Returns the relabelled map and {class: borrowed class or None}."""
    if mode not in REGION_FALLBACKS:
        raise UserError(f"`model.region_fallback` must be one of {', '.join(REGION_FALLBACKS)}, got {mode!r}")
    style_classes: set[int] = set()
    for lab in style_labels:
        if lab is not None:
            style_classes |= classes_present(lab, min_fraction)
    content_classes = sorted(classes_present(content_labels))
    mapping = resolve_borrowing(content_classes, style_classes, borrow if mode == "borrow" else {})

    def name(k: int | None) -> str:
        return "the whole painting" if k is None else (names[k] if names and k < len(names) else f"class {k}")

    for k, b in mapping.items():
        log.info("region correspondence: %s (not in the style) borrows %s", name(k), name(b))
    out = content_labels.clone()
    for k, b in mapping.items():
        if b is not None:
            out[content_labels == k] = b
    return out, mapping
