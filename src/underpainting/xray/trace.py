"""`python -m underpainting.xray trace HIDDEN --out DIR`: the hidden X-ray as a backdrop to paint a sketch on.

Writes, at the sketch's size: `backdrop.png` (the X-ray contrast-normalised and lightened, so palette strokes stand
out on it), `palette_key.png` (the label colours with their names), `key.json` (backdrop, size, palette: what a
browser page needs to lay a painting canvas over the X-ray), and with `--sketch`, `overlay.png` (the sketch over
the X-ray, to check the tracing follows the hidden shapes).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from underpainting.data.images import DEFAULT_MAX_PIXELS, current_pixel_limit, pixel_limit
from underpainting.data.labels import LabelSet
from underpainting.data.xray.io import (
    BACKDROP_RANGE,
    backdrop,
    load_visible,
    load_xray,
    save_grey,
)
from underpainting.runtime.destinations import writable_folder


def palette_key(labels: LabelSet, swatch: int = 18) -> Image.Image:
    img = Image.new("RGB", (200, swatch * len(labels) + 4), "white")
    draw, font = ImageDraw.Draw(img), ImageFont.load_default()
    for i, c in enumerate(labels.classes):
        y = 2 + i * swatch
        draw.rectangle([2, y, 2 + swatch - 3, y + swatch - 3], fill=c.rgb, outline="black")
        draw.text((swatch + 6, y + 3), f"{c.id:2d} {c.name}", fill="black", font=font)
    return img


def write_trace(
    hidden: str | Path,
    out: str | Path,
    labels: LabelSet,
    size: tuple[int, int] | None = None,
    sketch: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> dict:
    """Write the backdrop files (see the module docstring); `size` (H, W) defaults to the sketch's or the X-ray's.
    The inputs and `size` are held to `max_pixels` (`--max-pixels`)."""
    with pixel_limit(max_pixels, "--max-pixels"):
        if size is not None:
            current_pixel_limit().check(f"--size {size[1]}x{size[0]}", size[::-1])
        xray = load_xray(hidden)
        sk = load_visible(sketch) if sketch else None
    size = size or (tuple(sk.shape[-2:]) if sk is not None else tuple(xray.shape[-2:]))
    out = writable_folder(out, "--out")
    bd = backdrop(xray, size)
    save_grey(bd, out / "backdrop.png")
    palette_key(labels).save(out / "palette_key.png")
    key = {
        "backdrop": "backdrop.png",
        "source": str(hidden),
        "size": {"width": size[1], "height": size[0]},
        "backdrop_range": list(BACKDROP_RANGE),
        "palette": [{"id": c.id, "name": c.name, "rgb": list(c.rgb)} for c in labels.classes],
        "palette_key": "palette_key.png",
    }
    if sk is not None:
        if tuple(sk.shape[-2:]) != tuple(size):
            sk = F.interpolate(sk[None], size=size, mode="nearest")[0]
        overlay = 0.55 * sk + 0.45 * bd.expand(3, -1, -1)
        a = (overlay.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
        Image.fromarray(a, "RGB").save(out / "overlay.png")
        key["overlay"] = "overlay.png"
    (out / "key.json").write_text(json.dumps(key, indent=2))
    return key
