"""Stage-2 methods that paint by optimising an image (`models/nst.py`), each built from `conf/infer/stage2/*.yaml`.

- `NSTPainting`: semantic neural style transfer of the scene towards the style painting (Gatys et al. 2017).
- `DoodlePainting` (with `NoScene` as stage 1): the neural doodle, painted straight from the sketch (Champandard
  2016, "Semantic Style Transfer and Turning Two-Bit Doodles into Fine Artworks"), no scene in between:
  `python infer.py input=sketches/ infer/stage1=none 'infer/stage2=[doodle]' style.painting=p.jpg
  style.labels=p_labels.png`.

They share one module (the image, the objective, the pyramid); each stage only says what the content, the labels and
the start image are. The X-ray-guided stage (`xray/painting.py`) is an `NSTPainting` too; another stage that paints by
optimisation (the neighbour-based painter) goes here beside them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from underpainting.data.doodle import doodle_start
from underpainting.data.labels import LabelSet
from underpainting.data.nst import NSTProblem
from underpainting.errors import UserError
from underpainting.inference.stages import Style


class NoScene:
    """Stage 1 that makes no scene: the sketch itself, in its palette (for stages that read only the label map)."""

    def __init__(self, name: str = "sketch (no scene)") -> None:
        self.name = name

    def setup(self, labels: LabelSet, device: torch.device) -> None:
        self.labels = labels

    def __call__(self, labels: torch.Tensor, style: Style) -> list[torch.Tensor]:
        return [self.labels.colourise(labels)]


class NSTPainting:
    """Stage 2: semantic neural style transfer (Gatys et al. 2017, Sec. 4) of the scene towards the style painting,
    with the sketch's label map as the content guide and the style painting's label map as the style guide;
    coarse to fine (Sec. 6) over `pyramid` levels whose `edge` is a fraction (<= 1) of the scene's long side or px.

    `module` is a partial `NeuralStyleTransfer` (its VGG weights, objective and colour control come from the config);
    `progress` shows a bar over the optimisation steps of each sketch.
    """

    uses_style = True  # the contact sheet shows the style painting

    def __init__(
        self,
        module,
        pyramid: Sequence[dict],
        name: str = "nst",
        semantic: bool = True,
        progress: bool = False,
    ) -> None:
        self.module_factory, self.name, self.semantic, self.progress = module, name, semantic, progress
        self.pyramid = [dict(p) for p in pyramid]

    def setup(self, labels: LabelSet, device: torch.device) -> None:
        self.labels, self.device = labels, device
        self.module = self.module_factory(semantic=self.semantic).to(device)

    def levels(self, h: int, w: int) -> list[dict[str, int]]:
        long_side, out = max(h, w), []
        for p in self.pyramid:
            e = float(p["edge"])
            edge = min(long_side, round(e * long_side) if e <= 1 else int(e))
            if out and out[-1]["edge"] == edge:
                out[-1]["steps"] += int(p["steps"])
            else:
                out.append({"edge": max(16, edge), "steps": int(p["steps"])})
        return out

    def __call__(self, scene: torch.Tensor, labels: torch.Tensor, style: Style) -> torch.Tensor:
        if style.image is None:
            raise UserError("NST needs a style painting: set `style.painting` (and `style.labels`)")
        problem = NSTProblem(
            content=scene[None].float(),
            styles=[style.image.float()],
            content_labels=labels[None] if self.semantic else None,
            style_labels=[style.labels] if self.semantic else [],
            labels=self.labels,
            names={"style": style.name},
        )
        return self.paint(problem)

    def paint(self, problem: NSTProblem) -> torch.Tensor:
        """Optimise the module over `problem`'s pyramid; the result (3, H, W) at the content's size, in [-1, 1]."""
        h, w = problem.content.shape[-2:]
        with torch.enable_grad():
            self.module.attach(problem, self.levels(h, w))
        return self.optimise_attached((h, w))

    def optimise_attached(self, size: tuple[int, int]) -> torch.Tensor:
        """Run the attached module's schedule under a progress bar; the result (3, H, W) at `size`, in [-1, 1]."""
        bar = tqdm(total=self.module.total_steps, desc=self.name, unit="step", disable=not self.progress,
                   leave=False, dynamic_ncols=True)  # fmt: skip

        def tick(step: int, losses: dict) -> None:
            bar.update(1)
            bar.set_postfix(scale=self.module.level, loss=f"{losses['total']:.3g}")

        with torch.enable_grad():
            out = self.module.optimise(callback=tick)[0].cpu()
        bar.close()
        if out.shape[-2:] != tuple(size):
            out = F.interpolate(out[None], size=size, mode="bicubic", align_corners=False)[0].clamp(-1, 1)
        return out


class DoodlePainting(NSTPainting):
    """Stage 2: the sketch painted directly in the style painting's manner; the scene is not used.

    Args:
        module: partial `NeuralStyleTransfer` (objective: style_loss both, content_weight 0; init content; see
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
        super().__init__(module, pyramid, name=name, semantic=True, progress=progress)
        self.init, self.noise, self.seed = init, float(noise), int(seed)

    def __call__(self, scene: torch.Tensor, labels: torch.Tensor, style: Style) -> torch.Tensor:
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
        return self.paint(problem)
