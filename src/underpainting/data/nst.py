"""Inputs of optimisation-based style transfer: one content image, one or more style images with blend weights,
optional label maps (guides) for semantic control, and the coarse-to-fine schedule.

`NSTDataModule.problem` holds the images at their native size; the model resizes them for each pyramid level. The
training loader yields one small item per optimisation step (``{"step", "level", "edge"}``), so the Trainer, its
progress bar, checkpoints and loggers drive the optimisation like any other training run.

Label maps: an 8-bit greyscale PNG holds class ids directly (like `landscape_segments/labels/`); anything else
(RGB) is a sketch painted in the label set's palette and is decoded with `underpainting.data.sketch.decode_sketch`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from underpainting.data.images import load_rgb, pil_to_tensor
from underpainting.data.labels import LabelSet
from underpainting.errors import DataError


@dataclass
class NSTProblem:
    """Everything the optimisation needs, at native resolution: images (1, 3, H, W) in [-1, 1], labels (1, H, W)."""

    content: torch.Tensor
    styles: list[torch.Tensor]
    style_weights: list[float] = field(default_factory=list)
    content_labels: torch.Tensor | None = None
    style_labels: list[torch.Tensor | None] = field(default_factory=list)
    labels: LabelSet | None = None
    names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.styles:
            raise DataError("style transfer needs at least one style image (set `data.style`)")
        if not self.style_weights:
            self.style_weights = [1.0] * len(self.styles)
        if len(self.style_weights) != len(self.styles):
            raise DataError(
                f"{len(self.styles)} style images but {len(self.style_weights)} `data.style_weights`; give one each"
            )
        if any(w < 0 for w in self.style_weights) or sum(self.style_weights) <= 0:
            raise DataError(
                f"`data.style_weights` must be non-negative with a positive sum: {self.style_weights}"
            )
        if not self.style_labels:
            self.style_labels = [None] * len(self.styles)
        if len(self.style_labels) != len(self.styles):
            raise DataError(
                f"{len(self.styles)} style images but {len(self.style_labels)} `data.style_labels`; give one label "
                "map per style image (or none at all)"
            )

    @property
    def has_guides(self) -> bool:
        return self.content_labels is not None and any(s is not None for s in self.style_labels)

    @property
    def num_classes(self) -> int:
        if self.labels is not None:
            return len(self.labels)
        maps = [m for m in (self.content_labels, *self.style_labels) if m is not None]
        return int(max(int(m.max()) for m in maps)) + 1 if maps else 1


def load_label_map(
    path: str | Path, labels: LabelSet | None, size: tuple[int, int] | None = None, **decode_kw
) -> torch.Tensor:
    """A label file -> (1, H, W) int64 ids, resized (nearest) to `size` = (H, W) of the image it guides.

    Greyscale PNGs hold ids; RGB/palette images are sketches in `labels`' palette.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"label map {path} does not exist; check `data.content_labels` / `data.style_labels`")
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            raw = np.asarray(img) if mode in ("L", "I", "I;16") else None
    except OSError as err:
        raise DataError(f"{path}: cannot be read as a label map ({err})") from None
    if raw is not None:
        ids = torch.from_numpy(raw.astype(np.int64))
        if labels is not None and int(ids.max()) >= len(labels):
            bad = sorted(set(ids.unique().tolist()) - set(range(len(labels))))
            raise DataError(
                f"{path}: label ids {bad[:10]} are outside the label set (0..{len(labels) - 1}); remap them or paint "
                "the map as an RGB sketch in the palette"
            )
    else:
        if labels is None:
            raise DataError(f"{path} is an RGB sketch, which needs a label set (`data.labels: ${{labels}}`)")
        from underpainting.data.sketch import decode_sketch

        ids = decode_sketch(path, labels, **decode_kw)
    ids = ids[None]
    if size is not None and tuple(ids.shape[-2:]) != tuple(size):
        ids = F.interpolate(ids[None].float(), size=size, mode="nearest")[0].long()
    return ids


def resize_to_edge(images: torch.Tensor, edge: int) -> torch.Tensor:
    """Resize (B, C, H, W) so that the long side is `edge` (aspect kept): antialiased bicubic for images."""
    h, w = images.shape[-2:]
    size = _edge_size(h, w, edge)
    if size == (h, w):
        return images
    return F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)


def resize_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H, W) ids -> nearest-neighbour resize to `size`."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()


def _edge_size(h: int, w: int, edge: int) -> tuple[int, int]:
    scale = edge / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


class NSTSchedule(Dataset):
    """One item per optimisation step: which pyramid level it belongs to (Gatys et al. 2017, Sec. 6)."""

    def __init__(self, pyramid: Sequence[Mapping[str, int]]) -> None:
        self.items = [
            {"step": i, "level": lvl, "edge": int(p["edge"])}
            for lvl, p in enumerate(pyramid)
            for i in range(int(p["steps"]))
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, int]:
        return dict(self.items[i])


class NSTDataModule(pl.LightningDataModule):
    """Content, style(s) and guides for one style-transfer run, and its coarse-to-fine schedule.

    Args:
        content: content image path (ignored with `synthetic`).
        style: a style image path or a list of them.
        style_weights: blend weights of the style images (normalised; default equal).
        content_labels / style_labels: label maps for semantic control (PNG of ids or palette sketch); one per style
            image, `null` entries for styles without one.
        labels: the project's LabelSet (`${labels}`), for sketches and colourised guides.
        pyramid: list of ``{edge, steps}``: long image side and optimisation steps of each level, coarse to fine.
        synthetic: ``{content_seed, style_seed, size}``: use the procedural generator instead of files (a
            synthetic photo as content, a synthetic painting of another scene as style, their label maps as guides).
    """

    def __init__(
        self,
        content: str | None = None,
        style: str | Sequence[str] | None = None,
        style_weights: Sequence[float] | None = None,
        content_labels: str | None = None,
        style_labels: str | Sequence[str | None] | None = None,
        labels: LabelSet | None = None,
        pyramid: Sequence[Mapping[str, int]] = ({"edge": 512, "steps": 500},),
        synthetic: Mapping[str, int] | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        del num_workers  # accepted for the shared debug configs; the schedule items are built in-process
        self.content, self.content_labels = content, content_labels
        self.style = [style] if isinstance(style, str | Path) else list(style or [])
        if isinstance(style_labels, str | Path):
            style_labels = [style_labels]
        self.style_labels = list(style_labels) if style_labels is not None else []
        self.style_weights = list(style_weights) if style_weights is not None else []
        self.labels, self.synthetic = labels, synthetic
        self.pyramid = [{"edge": int(p["edge"]), "steps": int(p["steps"])} for p in pyramid]
        if not self.pyramid or any(p["edge"] < 16 or p["steps"] < 1 for p in self.pyramid):
            raise DataError(f"`data.pyramid` needs levels with edge >= 16 and steps >= 1, got {self.pyramid}")
        self.problem: NSTProblem | None = None

    @property
    def total_steps(self) -> int:
        return sum(p["steps"] for p in self.pyramid)

    def setup(self, stage: str | None = None) -> None:
        if self.problem is None:
            self.problem = self._synthetic() if self.synthetic else self._from_files()

    def _from_files(self) -> NSTProblem:
        if not self.content or not self.style:
            raise DataError(
                "set `data.content=<image>` and `data.style=<painting>` (or use experiment=nst_quickstart)"
            )
        content = pil_to_tensor(load_rgb(self.content))[None]
        styles = [pil_to_tensor(load_rgb(s))[None] for s in self.style]
        content_labels = (
            load_label_map(self.content_labels, self.labels, tuple(content.shape[-2:]))
            if self.content_labels
            else None
        )
        style_labels = [
            load_label_map(p, self.labels, tuple(s.shape[-2:])) if p else None
            for p, s in zip(self.style_labels or [None] * len(styles), styles, strict=False)
        ]
        if self.style_labels and len(self.style_labels) != len(styles):
            raise DataError(f"{len(styles)} style images but {len(self.style_labels)} `data.style_labels`")
        names = {"content": Path(self.content).stem, "style": "+".join(Path(s).stem for s in self.style)}
        return NSTProblem(
            content, styles, self.style_weights, content_labels, style_labels, self.labels, names
        )

    def _synthetic(self) -> NSTProblem:
        from underpainting.data.synthetic import SyntheticLandscapes

        if self.labels is None:
            raise DataError("synthetic NST inputs need the label set (`data.labels: ${labels}`)")
        cfg = dict(self.synthetic)
        render = SyntheticLandscapes(self.labels, int(cfg.get("size", 128)))
        photo = render(int(cfg.get("content_seed", 0)))
        painting = render(int(cfg.get("style_seed", 1)))
        names = {"content": f"synthetic_photo_{cfg.get('content_seed', 0)}"}
        names["style"] = f"synthetic_painting_{cfg.get('style_seed', 1)}"
        return NSTProblem(
            photo.photo[None], [painting.painting[None]], [1.0], photo.labels[None], [painting.labels[None]],
            self.labels, names,
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        # batch_size=None: items are passed through uncollated; the image itself lives in the model.
        return DataLoader(NSTSchedule(self.pyramid), batch_size=None, shuffle=False, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        """One schedule item, for callbacks that take a fixed batch from the validation loader (`SampleGrid`); the
        NST module has no validation_step, so the Trainer runs no validation loop."""
        return DataLoader(torch.utils.data.Subset(NSTSchedule(self.pyramid[:1]), [0]), batch_size=None)
