"""Inputs of the neural doodle (Champandard 2016): a sketch of regions and one or more style paintings with their
label maps; there is no content image, only where each class goes.

The optimised image starts from the sketch's regions filled with the style's mean colour of the class they paint
from (their own class, or the class they borrow, `underpainting.data.correspondences`) plus noise
(`init='regions'`), or from uniform noise (`init='noise'`: Champandard's `--seed noise`, values 16..240 of 255).
`DoodleDataModule` puts that start where `NSTDataModule` keeps the content image, so `NeuralStyleTransfer` with
`content_weight: 0` and `init: content` optimises it with the Trainer (`python train.py experiment=doodle`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from underpainting.data.correspondences import classes_present, resolve_borrowing
from underpainting.data.images import load_rgb, pil_to_tensor
from underpainting.data.labels import LabelSet
from underpainting.data.nst import NSTDataModule, NSTProblem, load_label_map
from underpainting.errors import DataError

DOODLE_INITS = ("regions", "noise")
NOISE_RANGE = (16 / 255, 240 / 255)  # neural-doodle `--seed-range 16:240`


def region_colours(
    sketch: torch.Tensor,
    styles: Sequence[torch.Tensor],
    style_labels: Sequence[torch.Tensor],
    borrow: Mapping[int, Sequence[int]] | None = None,
    min_fraction: float = 0.005,
) -> dict[int, torch.Tensor]:
    """{sketch class: mean RGB (3,) in [-1, 1]} over the styles' pixels of that class, of the class it borrows, or
    (nothing to borrow) of the whole paintings. `sketch` (1, H, W) ids; styles (1, 3, h, w) with labels (1, h, w)."""
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, float] = {}
    present: set[int] = set()
    for img, lab in zip(styles, style_labels, strict=True):
        present |= classes_present(lab, min_fraction)
        flat, ids = img[0].reshape(3, -1).float(), lab.reshape(-1)
        for k in ids.unique().tolist():
            sel = ids == k
            sums[k] = sums.get(k, 0) + flat[:, sel].sum(dim=1)
            counts[k] = counts.get(k, 0.0) + float(sel.sum())
    whole = sum(sums.values()) / sum(counts.values())
    content = sorted(classes_present(sketch))
    borrowed = resolve_borrowing(content, present, borrow or {})
    out = {}
    for k in content:
        src = borrowed.get(k, k)
        out[k] = sums[src] / counts[src] if src is not None else whole
    return out


def doodle_start(
    sketch: torch.Tensor,
    styles: Sequence[torch.Tensor],
    style_labels: Sequence[torch.Tensor],
    init: str = "regions",
    noise: float = 0.1,
    seed: int = 0,
    borrow: Mapping[int, Sequence[int]] | None = None,
) -> torch.Tensor:
    """The doodle's first image (1, 3, H, W) in [-1, 1]: region colours + Gaussian noise of std `noise`, or noise."""
    if init not in DOODLE_INITS:
        raise DataError(f"the doodle init must be one of {', '.join(DOODLE_INITS)}, got {init!r}")
    g = torch.Generator().manual_seed(int(seed))
    h, w = sketch.shape[-2:]
    if init == "noise":
        lo, hi = NOISE_RANGE
        return (lo + (hi - lo) * torch.rand(1, 3, h, w, generator=g)) * 2 - 1
    start = torch.zeros(1, 3, h, w)
    for k, rgb in region_colours(sketch, styles, style_labels, borrow).items():
        start[0][:, sketch[0] == k] = rgb.view(3, 1)
    return (start + noise * torch.randn(1, 3, h, w, generator=g)).clamp(-1, 1)


class DoodleDataModule(NSTDataModule):
    """A sketch and the style painting(s) with label maps, for `NeuralStyleTransfer` with content weight 0.

    Args:
        sketch: the doodle: an RGB sketch in the label set's palette or an 8-bit PNG of class ids.
        style / style_weights / style_labels / labels / pyramid: as for `NSTDataModule` (a label map per style).
        init: 'regions' (mean region colours of the style + noise) | 'noise'.
        noise: std of the noise added to the region colours (pixels in [-1, 1]).
        region_fallback: 'borrow' | 'global', as `model.region_fallback` (which colour a missing class starts from).
        seed: noise seed.
    """

    def __init__(
        self,
        sketch: str | None = None,
        style: str | Sequence[str] | None = None,
        style_weights: Sequence[float] | None = None,
        style_labels: str | Sequence[str | None] | None = None,
        labels: LabelSet | None = None,
        pyramid: Sequence[Mapping[str, int]] = ({"edge": 256, "steps": 100},),
        init: str = "regions",
        noise: float = 0.1,
        region_fallback: str = "borrow",
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(None, style, style_weights, None, style_labels, labels, pyramid, None, num_workers)
        if init not in DOODLE_INITS:
            raise DataError(f"`data.init` must be one of {', '.join(DOODLE_INITS)}, got {init!r}")
        self.sketch, self.init, self.noise = sketch, init, float(noise)
        self.region_fallback, self.seed = region_fallback, int(seed)

    def _from_files(self) -> NSTProblem:
        if not self.sketch or not self.style:
            raise DataError("the doodle needs `data.sketch=<sketch.png>` and `data.style=[painting.jpg]`")
        if len(self.style_labels) != len(self.style) or not all(self.style_labels):
            raise DataError(
                f"the doodle needs one label map per style image: `data.style_labels` has {len(self.style_labels)} "
                f"for {len(self.style)} style image(s); paint one in the palette of conf/labels (see "
                "examples/styles/README.md)"
            )
        if self.labels is None:
            raise DataError("the doodle needs the label set (`data.labels: ${labels}`)")
        sketch = load_label_map(self.sketch, self.labels)
        styles = [pil_to_tensor(load_rgb(s))[None] for s in self.style]
        style_labels = [load_label_map(p, self.labels, tuple(s.shape[-2:])) for p, s in zip(self.style_labels, styles, strict=True)]  # fmt: skip
        borrow = self.labels.borrow if self.region_fallback == "borrow" else {}
        start = doodle_start(sketch, styles, style_labels, self.init, self.noise, self.seed, borrow)
        names = {"content": Path(self.sketch).stem, "style": "+".join(Path(s).stem for s in self.style)}
        return NSTProblem(start, styles, self.style_weights, sketch, style_labels, self.labels, names)
