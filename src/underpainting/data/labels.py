"""The semantic label set shared by every model: class ids, names, sketch colours and source-dataset mappings.

It is built from `conf/labels/*.yaml` so that the synthetic generator, the paired datamodules, sketch decoding,
SPADE's one-hot input and semantic style transfer all agree on what id 9 means. `one_hot` and `instance_edges`
turn label and instance maps into the networks' input channels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from underpainting.data.correspondences import parse_borrow_table
from underpainting.errors import DataError


@dataclass(frozen=True)
class LabelClass:
    id: int
    name: str
    rgb: tuple[int, int, int]
    source_ids: dict[str, tuple[int, ...]] = field(default_factory=dict)


class LabelSet:
    """An ordered set of classes with ids 0..C-1 (id 0 is the catch-all `other`).

    `borrow` maps a class name to the classes it borrows from, in order of preference, when a style painting lacks
    it (region correspondences of semantic NST and the doodle, see `underpainting.data.correspondences`).
    """

    SOURCES = ("coco_stuff", "ade20k")

    def __init__(self, classes: Sequence[Mapping], borrow: Mapping[str, Sequence[str]] | None = None) -> None:
        parsed = []
        for c in classes:
            rgb = tuple(int(v) for v in c["rgb"])
            if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                raise ValueError(
                    f"label class {c.get('name')!r}: rgb must be three ints in 0..255, got {c['rgb']}"
                )
            sources = {s: tuple(int(v) for v in c.get(s, ()) or ()) for s in self.SOURCES}
            parsed.append(LabelClass(int(c["id"]), str(c["name"]), rgb, sources))
        ids = [c.id for c in parsed]
        if ids != list(range(len(parsed))):
            raise ValueError(f"label ids must be 0..{len(parsed) - 1} in order, got {ids}")
        colours = [c.rgb for c in parsed]
        if len(set(colours)) != len(colours):
            raise ValueError("two label classes share a sketch colour; every class needs its own")
        self.classes: tuple[LabelClass, ...] = tuple(parsed)
        self.borrow: dict[int, tuple[int, ...]] = parse_borrow_table(borrow or {}, self.names)

    @classmethod
    def from_yaml(cls, path: str | Path) -> LabelSet:
        """A label set file (conf/labels/landscape.yaml); DataError naming it when it is not one."""
        import yaml

        try:
            cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError) as e:  # ValueError: not UTF-8 text
            raise DataError(f"{path}: cannot be read as a label set YAML ({e})") from None
        if not isinstance(cfg, dict) or not isinstance(cfg.get("classes"), list):
            raise DataError(f"{path}: not a label set (no `classes:` list); see conf/labels/landscape.yaml")
        return cls(cfg["classes"], cfg.get("borrow"))

    def __len__(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return f"LabelSet({len(self)} classes: {', '.join(self.names)})"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def id(self, name: str) -> int:
        for c in self.classes:
            if c.name == name:
                return c.id
        raise KeyError(f"no label class named {name!r}; known: {', '.join(self.names)}")

    @property
    def palette(self) -> torch.Tensor:
        """(C, 3) uint8 sketch colours, row i for class i."""
        return torch.tensor([c.rgb for c in self.classes], dtype=torch.uint8)

    def colourise(self, labels: torch.Tensor) -> torch.Tensor:
        """Class ids (..., H, W) -> sketch image (..., 3, H, W) in [-1, 1], for sample grids and example sketches."""
        rgb = self.palette.to(labels.device)[labels.long().clamp(0, len(self) - 1)]  # (..., H, W, 3)
        return rgb.movedim(-1, -3).float() / 127.5 - 1.0

    def source_lut(self, source: str) -> np.ndarray:
        """A 256-entry lookup table mapping a source dataset's label values to this set's ids (unlisted -> 0)."""
        if source not in self.SOURCES:
            raise ValueError(f"unknown label source {source!r}; known: {', '.join(self.SOURCES)}")
        lut = np.zeros(256, dtype=np.uint8)
        for c in self.classes:
            for v in c.source_ids[source]:
                lut[v] = c.id
        return lut


def one_hot(ids: torch.Tensor, num_classes: int, paths: Sequence[str] | None = None) -> torch.Tensor:
    """(B, H, W) class ids -> (B, num_classes, H, W) float one-hot. On the CPU an id outside 0..num_classes-1 raises a
    DataError naming the batch's `paths` (instead of scatter's opaque 'index out of bounds', or a silently wrong map).

    On an accelerator that check would read the ids back to the host at every training step (a sync that stalls the
    GPU's queue), so it is left to where labels are read (`paired.LabelReader` names the file and the fix); an id
    that gets through anyway stops scatter with a device-side assert, never a wrong map."""
    ids = ids.long()
    if ids.device.type == "cpu":
        bad = (ids < 0) | (ids >= num_classes)
        if bad.any():
            values = ids[bad].unique().tolist()[:10]
            where = f" in {', '.join(map(str, paths))}" if paths is not None else ""
            raise DataError(
                f"label id(s) {values}{where} outside 0..{num_classes - 1}: the data's labels do not match the "
                "model's label set (check `labels`, data.label_source and data.dontcare)"
            )
    return torch.zeros(ids.shape[0], num_classes, *ids.shape[1:], device=ids.device).scatter_(
        1, ids[:, None], 1.0
    )


def instance_edges(instance: torch.Tensor) -> torch.Tensor:
    """(B, H, W) instance ids -> (B, 1, H, W) float map, 1 where a pixel differs from a 4-neighbour (pix2pixHD)."""
    t = instance[:, None]
    edge = torch.zeros_like(t, dtype=torch.bool)
    dx = t[..., :, 1:] != t[..., :, :-1]
    dy = t[..., 1:, :] != t[..., :-1, :]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.float()
