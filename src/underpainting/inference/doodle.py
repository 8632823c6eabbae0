"""Paint straight from the sketch: the neural doodle as an inference stage (Champandard 2016, "Semantic Style
Transfer and Turning Two-Bit Doodles into Fine Artworks"), no scene in between.

`python infer.py input=sketches/ infer/stage1=none 'infer/stage2=[doodle]' style.painting=p.jpg
style.labels=p_labels.png`: `NoScene` passes the sketch through as stage 1, `DoodlePainting` optimises an image
from the sketch's regions (content weight 0) with the MRF style loss and semantic matching, coarse to fine.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from underpainting.data.doodle import doodle_start
from underpainting.data.labels import LabelSet
from underpainting.errors import UserError
from underpainting.inference.stages import NSTPainting, Style


class NoScene:
    """Stage 1 that makes no scene: the sketch itself, in its palette (for stages that read only the label map)."""

    def __init__(self, name: str = "sketch (no scene)") -> None:
        self.name = name

    def setup(self, labels: LabelSet, device: torch.device) -> None:
        self.labels = labels

    def __call__(self, labels: torch.Tensor, style: Style) -> list[torch.Tensor]:
        return [self.labels.colorize(labels)]


class DoodlePainting(NSTPainting):
    """Stage 2: the sketch painted directly in the style painting's manner; the scene is not used.

    Args:
        module: partial `NeuralStyleTransfer` (style_loss mrf, content_weight 0, init content; see
            conf/infer/stage2/doodle.yaml).
        pyramid: levels, `edge` a fraction (<= 1) of the sketch's long side or px (Li & Wand: 3 levels).
        init: 'regions' (the style's mean colour of each region's class + noise) | 'noise'.
        noise: std of the noise on the region colours.
        seed: noise seed.
        progress: a progress bar over the optimisation steps of each sketch.
    """

    def __init__(
        self,
        module,
        pyramid: Sequence[dict],
        name: str = "doodle",
        init: str = "regions",
        noise: float = 0.1,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        super().__init__(module, pyramid, name=name, semantic=True)
        self.init, self.noise, self.seed, self.progress = init, float(noise), int(seed), progress

    def __call__(self, scene: torch.Tensor, labels: torch.Tensor, style: Style) -> torch.Tensor:
        from underpainting.data.nst import NSTProblem

        if style.image is None or style.labels is None:
            raise UserError(
                "the doodle needs a style painting and its label map: set `style.painting` and `style.labels`"
            )
        sketch = labels[None].long()
        borrow = self.labels.borrow if self.module.hparams.region_fallback == "borrow" else {}
        start = doodle_start(sketch, [style.image], [style.labels], self.init, self.noise, self.seed, borrow)
        problem = NSTProblem(
            content=start, styles=[style.image.float()], content_labels=sketch, style_labels=[style.labels],
            labels=self.labels, names={"style": style.name},
        )  # fmt: skip
        h, w = sketch.shape[-2:]
        from tqdm.auto import tqdm

        with torch.enable_grad():
            self.module.attach(problem, self.levels(h, w))
            bar = tqdm(total=self.module.total_steps, desc=self.name, unit="step", disable=not self.progress,
                       leave=False, dynamic_ncols=True)  # fmt: skip

            def tick(step: int, losses: dict) -> None:
                bar.update(1)
                bar.set_postfix(level=self.module.level, loss=f"{losses['total']:.3g}")

            out = self.module.optimise(callback=tick)[0].cpu()
            bar.close()
        if out.shape[-2:] != (h, w):
            out = F.interpolate(out[None], size=(h, w), mode="bicubic", align_corners=False)[0].clamp(-1, 1)
        return out
