"""The hidden X-ray as the structure of the painting: semantic NST (Gatys et al. 2017) whose content is luminance
only (Sec. 5.1) and taken from the concealed design's X-ray, with the style guided by the traced sketch's labels
(Sec. 4) and the colours of the stage-1 scene. The reconstruction keeps the hidden composition's shapes.

`python infer.py input=traced_sketch.png 'infer/stage2=[nst_xray]' xray=<separate's hidden.png> style.painting=...`
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from underpainting.data.colour import rgb_to_yiq, yiq_to_rgb
from underpainting.data.labels import LabelSet
from underpainting.data.xray.io import contrast_normalise, load_xray
from underpainting.errors import UserError
from underpainting.inference.painting import NSTPainting
from underpainting.inference.stages import Style


def xray_content(scene: torch.Tensor, xray: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """(3, H, W) scene in [-1, 1] with its luminance replaced by the (1, h, w) X-ray's (resized, matched to the
    scene's luminance mean and std; `weight` < 1 blends the scene's own luminance back in)."""
    h, w = scene.shape[-2:]
    xh, xw = xray.shape[-2:]
    if abs(xw / xh - w / h) > 0.02 * (w / h):
        raise UserError(
            f"the hidden X-ray is {xw}x{xh} px but the sketch {w}x{h}: different shapes, so it cannot guide this "
            "sketch. Trace the sketch on `python -m underpainting.xray trace <hidden.png>`'s backdrop (same shape)"
        )
    x = F.interpolate(contrast_normalise(xray)[None].float(), size=(h, w), mode="bilinear", antialias=True)[0]
    yiq = rgb_to_yiq(scene[None].float())
    y = yiq[:, :1]
    x = (x - x.mean()) / x.std().clamp_min(1e-6) * y.std() + y.mean()
    yiq = torch.cat([weight * x[None] + (1 - weight) * y, yiq[:, 1:]], 1)
    return yiq_to_rgb(yiq)[0]


class XRayNSTPainting(NSTPainting):
    """`NSTPainting` on the scene with the X-ray's luminance (`xray_content`); configure the module with
    `colour: luminance` so that only luminance is the content and the scene's colours come back at the end."""

    def __init__(self, module, pyramid, xray: str | None, name: str = "nst (x-ray structure)", semantic: bool = True,
                 xray_weight: float = 1.0) -> None:  # fmt: skip
        super().__init__(module, pyramid, name=name, semantic=semantic)
        self.xray_path, self.xray_weight = xray, float(xray_weight)

    def setup(self, labels: LabelSet, device: torch.device) -> None:
        if not self.xray_path:
            raise UserError(
                "`xray` is not set: the X-ray-guided NST stage needs the concealed design's X-ray, e.g. "
                "`xray=<out>/hidden.png` from `python -m underpainting.xray separate XRAY VISIBLE --out <out>`"
            )
        self.xray = load_xray(self.xray_path)
        super().setup(labels, device)

    def __call__(self, scene: torch.Tensor, labels: torch.Tensor, style: Style) -> torch.Tensor:
        return super().__call__(xray_content(scene, self.xray, self.xray_weight), labels, style)
