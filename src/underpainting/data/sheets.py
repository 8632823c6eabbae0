"""Pictures made of pictures: labelled grids (a column per image kind, a row per sample: training sample grids) and
contact sheets, one per sketch (a row per scene variant: sketch | scene | each painting, labelled) and one overview
across sketches. Cells keep their aspect ratio (letterboxed on white) so odd-sized sketches are not distorted."""

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
        draw.text(
            (padding + j * (w + padding) + 2, 1), fit_text(draw, name, font, w - 4), fill="black", font=font
        )
    return sheet


def fit_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """`text`, cut with an ellipsis to `width` px, so a long caption does not run into the next column's."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


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
