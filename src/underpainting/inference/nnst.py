"""Paint a sketch from one or several paintings in seconds: the painter (guided neural-neighbour style transfer,
`underpainting.models.nnst`) as an inference stage.

`python infer.py input=sketches/ 'infer/stage2=[nnst]' style.paintings=[a.jpg,b.jpg] style.labels=[a_labels.png,
b_labels.png]`: each region of the sketch is painted with the strokes of its class in the paintings that have it.
With stage 1 `none` (the default) it paints from the sketch alone, starting from the paintings' region colours;
after a SPADE scene, `init: content` starts from the scene instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from underpainting.data.labels import LabelSet
from underpainting.data.nst import resize_labels
from underpainting.data.paintings import Painting, check_painting
from underpainting.errors import UserError
from underpainting.inference.painting import NSTPainting
from underpainting.inference.stages import Style


def style_paintings(style: Style) -> list[Painting]:
    """The paintings of a `Style`: `style.paintings` (infer's `style.paintings=[...]`) or its one painting."""
    if style.paintings:
        return list(style.paintings)
    if style.image is None:
        raise UserError(
            "the painter needs a style painting: set `style.painting` or `style.paintings=[a.jpg,b.jpg]`"
        )
    check_painting(style.image, style.labels, style.name or "style.painting")
    return [Painting(style.image, style.labels, style.name or "painting")]


class NNSTPainting(NSTPainting):
    """Stage 2: the sketch painted by the painter (NNST with region guidance), coarse to fine over `pyramid`.

    Args:
        module: partial `NeuralNeighbourStyleTransfer` (conf/infer/stage2/nnst.yaml).
        pyramid: scales coarse to fine, `edge` in px (or a fraction <= 1 of the output's long side) with its
            optimisation steps; the scales at or above the output's long side become one last scale at its size, with
            the steps of the first of them (so one schedule serves 256 px sketches and 1024 px ones).
        long_side: the painting's long side in px (the sketch is resized to it, nearest); null: the sketch's size.
        progress: a progress bar over the optimisation steps.
    """

    def __init__(
        self,
        module,
        pyramid: Sequence[dict],
        name: str = "painter",
        long_side: int | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__(module, pyramid, name=name, semantic=True)
        self.long_side, self.progress = long_side, progress

    def setup(self, labels: LabelSet, device: torch.device) -> None:
        self.labels, self.device = labels, device
        self.module = self.module_factory().to(device)
        self.module.build()  # missing VGG weights stop the run here, before any sketch

    def levels(self, h: int, w: int) -> list[dict[str, int]]:
        long_side, out = max(h, w), []
        for p in self.pyramid:
            e = float(p["edge"])
            edge = min(long_side, round(e * long_side) if e <= 1 else int(e))
            if not out or edge > out[-1]["edge"]:
                out.append({"edge": edge, "steps": int(p["steps"])})
            if edge == long_side:
                break
        return out

    def __call__(self, scene: torch.Tensor, labels: torch.Tensor, style: Style) -> torch.Tensor:
        paintings = style_paintings(style)
        sketch = labels[None].long()
        h, w = sketch.shape[-2:]
        if self.long_side:
            size = (round(h * self.long_side / max(h, w)), round(w * self.long_side / max(h, w)))
            sketch = resize_labels(sketch, size)
            scene = F.interpolate(scene[None].float(), size=size, mode="bicubic", align_corners=False)[0]
            h, w = size
        with torch.enable_grad():
            self.module.attach(scene[None].float(), sketch, paintings, self.labels, self.levels(h, w))
        return self.optimise_attached((h, w))
