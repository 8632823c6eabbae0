"""Write the example style paintings and their label maps in examples/styles/ (run once; the files are committed).

Two Saint-Rémy 1889 landscapes from the CycleGAN `vangogh2photo` paintings (public domain; see
examples/styles/README.md for the sources), copied byte for byte, and their label maps painted in the palette of
conf/labels/landscape.yaml: large regions (skyline, mountain, hills, wall, houses) are polygons traced by eye on the
256 px images; inside them a colour rule separates what the polygons cannot (white cloud from blue sky, dark trees
from the sky behind them, red poppies from the green grass), followed by a small majority filter.

    python scripts/make_example_styles.py [../shared]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from underpainting.data.labels import LabelSet
from underpainting.data.sketch import encode_sketch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "styles"


def polygon_mask(size: tuple[int, int], points: list[tuple[float, float]], width: int = 0) -> np.ndarray:
    """A boolean (H, W) mask of a filled polygon (width 0) or a polyline `width` px thick."""
    img = Image.new("L", size, 0)
    draw = ImageDraw.Draw(img)
    if width:
        draw.line(points, fill=1, width=width, joint="curve")
    else:
        draw.polygon(points, fill=1)
    return np.asarray(img, dtype=bool)


def majority(ids: np.ndarray, region: np.ndarray, classes: list[int], k: int = 5) -> np.ndarray:
    """Inside `region`, replace each pixel of `classes` by the most frequent of them in its k×k neighbourhood."""
    t = torch.from_numpy(ids).long()
    votes = torch.stack([(t == c).float() for c in classes])[None]
    counts = F.avg_pool2d(votes, k, 1, k // 2, count_include_pad=False)[0]
    winner = torch.tensor(classes)[counts.argmax(0)].numpy()
    out = ids.copy()
    sel = region & np.isin(ids, classes)
    out[sel] = winner[sel]
    return out


def mountains_behind_saint_paul(rgb: np.ndarray, labels: LabelSet) -> np.ndarray:
    """vangogh_043: clouds over the Alpilles, green hills, houses, the walled wheat field (Saint-Rémy, June 1889)."""
    h, w = rgb.shape[:2]
    c = labels.id
    ids = np.full((h, w), c("grass"), dtype=np.int64)
    ridge = [(256, 28), (240, 36), (220, 47), (205, 57), (192, 68), (178, 80), (160, 90), (140, 97), (120, 104),
             (110, 98), (95, 101), (75, 108), (62, 112), (50, 110), (25, 107), (0, 104)]  # fmt: skip
    hill_top = [(0, 128), (30, 122), (55, 114), (75, 108), (95, 101), (110, 98), (125, 101), (135, 108), (150, 112),
                (170, 106), (190, 95), (215, 85), (240, 75), (256, 70)]  # fmt: skip
    hill_foot = [(256, 118), (200, 123), (130, 126), (60, 129), (0, 134)]
    ids[polygon_mask((w, h), hill_top + hill_foot)] = c("hill")
    right = [*reversed(ridge[:9]), (256, 70), (240, 75), (215, 85), (190, 95), (170, 106), (150, 112),
             (135, 108), (125, 101)]  # fmt: skip
    left = [(0, 104), (25, 107), (50, 110), (62, 112), (55, 114), (30, 122), (0, 128)]
    ids[polygon_mask((w, h), right) | polygon_mask((w, h), left)] = c("mountain")
    air = polygon_mask((w, h), [(0, 0), (256, 0), *ridge])
    x = rgb.astype(np.float32) / 255
    value, sat = x.max(-1), x.max(-1) - x.min(-1)
    ids[air] = np.where((value > 0.62) & (sat < 0.3), c("cloud"), c("sky"))[air]
    ids = majority(ids, air, [c("cloud"), c("sky")], 7)
    houses = [[(104, 121), (122, 119), (123, 131), (106, 133)],
              [(150, 104), (166, 103), (176, 112), (170, 118), (152, 114)],
              [(222, 114), (235, 110), (252, 112), (252, 125), (240, 136), (226, 136)]]  # fmt: skip
    for poly in houses:
        ids[polygon_mask((w, h), poly)] = c("building")
    wall = [(0, 198), (28, 168), (60, 151), (130, 143), (200, 137), (256, 132)]
    ids[polygon_mask((w, h), wall, width=6)] = c("fence_railing")
    ids[polygon_mask((w, h), [(0, 166), (30, 157), (60, 150), (62, 156), (35, 172), (15, 195), (0, 214)])] = (
        c("fence_railing")
    )  # the striped stone wall at the left edge
    return ids


def field_with_poppies(rgb: np.ndarray, labels: LabelSet) -> np.ndarray:
    """vangogh_047: a poppy field under a windy sky, a row of trees on the horizon (Saint-Rémy, 1889)."""
    h, w = rgb.shape[:2]
    c = labels.id
    x = rgb.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    lum = (0.299 * r + 0.587 * g + 0.114 * b) / 255
    horizon = [(0, 0), (256, 0), (256, 104), (215, 106), (180, 103), (120, 98), (60, 97), (0, 96)]
    top = polygon_mask((w, h), horizon)
    ids = np.where(top, c("tree"), c("grass")).astype(np.int64)
    # above the horizon: light, bluish or white paint is sky; dark or green paint is the trees
    sky = top & (((b > r + 8) & (lum > 0.42)) | (lum > 0.72))
    ids[sky] = c("sky")
    yy, xx = np.mgrid[:h, :w]
    ids[top & ((yy < 38) | ((yy < 64) & (xx < 90)))] = c("sky")  # dark wind strokes, not trees, up there
    ids = majority(ids, top, [c("sky"), c("tree")], 5)
    # the field: red-dominant paint is poppies, the rest grass
    field = ~top
    poppies = field & (r > g + 40) & (r > b + 30)
    ids[poppies] = c("flower")
    ids = majority(ids, field, [c("flower"), c("grass")], 3)
    return ids


STYLES = {
    # file name: (shared source, label painter)
    "mountains_behind_saint_paul_1889": (
        "data/vangogh_landscapes/trainA/vangogh_043.jpg",
        mountains_behind_saint_paul,
    ),
    "field_with_poppies_1889": ("data/vangogh_landscapes/trainA/vangogh_047.jpg", field_with_poppies),
}


def main(shared: Path) -> list[Path]:
    labels = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (src, painter) in STYLES.items():
        image = OUT / f"{name}.jpg"
        shutil.copyfile(shared / src, image)  # byte for byte: no recompression
        rgb = np.asarray(Image.open(image).convert("RGB"))
        ids = painter(rgb, labels)
        path = OUT / f"{name}_labels.png"
        encode_sketch(torch.from_numpy(ids), labels).save(path, optimize=True)
        written += [image, path]
    return written


if __name__ == "__main__":
    for p in main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared"):
        print(p, f"{p.stat().st_size / 1024:.1f} KB")
