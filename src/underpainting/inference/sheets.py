"""Contact sheets: one per sketch (a row per scene variant: sketch | scene | each painting, labelled) and one overview
across sketches. Cells keep their aspect ratio (letterboxed on white) so odd-sized sketches are not distorted."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from underpainting.utils.grid import labelled_grid


def fit_cell(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(3, h, w) in [-1, 1] -> (3, height, width): resized to fit, centred on a white background."""
    h, w = x.shape[-2:]
    s = min(height / h, width / w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    y = x.float()[None]
    if (nh, nw) != (h, w):
        y = F.interpolate(y, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    out = torch.ones(1, 3, height, width)
    top, left = (height - nh) // 2, (width - nw) // 2
    out[..., top : top + nh, left : left + nw] = y.clamp(-1, 1)
    return out[0]


def _cell_size(h: int, w: int, max_side: int) -> tuple[int, int]:
    s = min(1.0, max_side / max(h, w))
    return max(1, round(h * s)), max(1, round(w * s))


def titled(sheet: Image.Image, title: str, height: int = 16) -> Image.Image:
    """The sheet under a one-line title bar."""
    out = Image.new("RGB", (sheet.width, sheet.height + height), "white")
    out.paste(sheet, (0, height))
    ImageDraw.Draw(out).text((3, 2), title, fill="black", font=ImageFont.load_default())
    return out


def contact_sheet(rows: list[dict[str, torch.Tensor]], title: str = "", max_side: int = 384) -> Image.Image:
    """`rows`: one {column name: (3, H, W)} per scene variant, all with the same columns in the same order.
    Cells are shown at the sketch's aspect ratio, the longer side at most `max_side`."""
    names = list(rows[0])
    h, w = rows[0][names[0]].shape[-2:]
    ch, cw = _cell_size(h, w, max_side)
    columns = {n: torch.stack([fit_cell(r[n], ch, cw) for r in rows]) for n in names}
    sheet = labelled_grid(columns)
    return titled(sheet, title) if title else sheet


def overview_sheet(rows: list[tuple[str, dict[str, torch.Tensor]]], cell: int = 192) -> Image.Image:
    """One row per sketch (its first variant), in square `cell` x `cell` cells; columns are the union of all rows'
    columns (a method missing for a sketch leaves a blank cell). Row titles sit in a left margin."""
    names: list[str] = []
    for _, r in rows:
        names += [n for n in r if n not in names]
    blank = torch.ones(3, cell, cell)
    columns = {
        n: torch.stack([fit_cell(r[n], cell, cell) if n in r else blank for _, r in rows]) for n in names
    }
    grid = labelled_grid(columns)
    header, pad = 14, 2
    margin = 8 + 6 * max(len(t) for t, _ in rows)  # the default bitmap font is 6 px per character
    out = Image.new("RGB", (grid.width + margin, grid.height), "white")
    out.paste(grid, (margin, 0))
    draw, font = ImageDraw.Draw(out), ImageFont.load_default()
    for i, (title, _) in enumerate(rows):
        y = header + pad + i * (cell + pad) + cell // 2 - 6
        draw.text((4, y), title, fill="black", font=font)
    return out
