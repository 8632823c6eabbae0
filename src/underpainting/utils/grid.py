"""Labelled image grids: one column per named image kind, one row per sample, a header with the column names."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

from underpainting.data.images import tensor_to_pil


def labelled_grid(columns: dict[str, torch.Tensor], padding: int = 2, header: int = 14) -> Image.Image:
    """`columns`: name -> (N, 3, H, W) in [-1, 1] (all N equal). Images of other sizes are resized to the first."""
    names = list(columns)
    first = columns[names[0]]
    n, (h, w) = first.shape[0], first.shape[-2:]
    cells = []
    for i in range(n):
        for name in names:
            x = columns[name][i].detach().float().cpu()
            if x.shape[0] == 1:
                x = x.expand(3, -1, -1)
            if x.shape[-2:] != (h, w):
                x = F.interpolate(x[None], size=(h, w), mode="bilinear", antialias=True, align_corners=False)[
                    0
                ]
            cells.append(x)
    grid = make_grid(torch.stack(cells), nrow=len(names), padding=padding, pad_value=1.0)
    body = tensor_to_pil(grid)
    sheet = Image.new("RGB", (body.width, body.height + header), "white")
    sheet.paste(body, (0, header))
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for j, name in enumerate(names):
        draw.text((padding + j * (w + padding) + 2, 1), name, fill="black", font=font)
    return sheet
