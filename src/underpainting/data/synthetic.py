"""Procedural landscapes: the embedded, offline default dataset.

Each seed gives one scene: a label map (sky, cloud, mountain, hill, water, field, grass, flower, tree), a photo-like
rendering (textured regions under a light gradient) and a painting-like rendering (a Van Gogh-like palette laid
down in directional brush strokes that swirl in the sky and follow the land). The same seed always gives the same
scene at a given size, so datasets, tests and example sketches are reproducible without any download.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from underpainting.data.labels import LabelSet

# Base colours (RGB 0..255). Photo: plausible daylight colours. Painting: Van Gogh's Saint-Remy palette
# (cobalt and ultramarine skies, cream clouds, violet hills, chrome-yellow wheat, viridian cypresses).
PHOTO_COLOURS = {
    "sky": (105, 155, 215),
    "cloud": (232, 234, 240),
    "mountain": (112, 118, 132),
    "hill": (88, 118, 72),
    "water": (64, 104, 150),
    "field": (196, 176, 96),
    "grass": (88, 146, 54),
    "flower": (214, 58, 64),
    "tree": (38, 70, 36),
}
PAINTING_COLOURS = {
    "sky": (44, 84, 170),
    "cloud": (232, 220, 150),
    "mountain": (96, 100, 160),
    "hill": (104, 146, 88),
    "water": (52, 104, 168),
    "field": (226, 190, 58),
    "grass": (134, 172, 62),
    "flower": (236, 92, 36),
    "tree": (22, 64, 44),
}
SCENE_CLASSES = tuple(PHOTO_COLOURS)


@dataclass
class Scene:
    labels: torch.Tensor  # (H, W) int64 class ids
    photo: torch.Tensor  # (3, H, W) in [-1, 1]
    painting: torch.Tensor  # (3, H, W) in [-1, 1]


def _smooth_noise(g: torch.Generator, h: int, w: int, cells: int) -> torch.Tensor:
    """Value noise: a (cells x cells) random grid bicubically upsampled to (h, w), roughly in [-1, 1]."""
    grid = torch.rand(1, 1, cells + 1, cells + 1, generator=g) * 2 - 1
    return F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=True)[0, 0].clamp(-1.5, 1.5)


def _fractal(g: torch.Generator, h: int, w: int, octaves: int = 4, base: int = 3) -> torch.Tensor:
    out = torch.zeros(h, w)
    for o in range(octaves):
        out += _smooth_noise(g, h, w, base * 2**o) / 2**o
    return out / 1.9


def _ridge(g: torch.Generator, w: int, level: float, amplitude: float, roughness: int = 5) -> torch.Tensor:
    """A 1D skyline y(x) in [0, 1] image-height units: a sum of sines with random phases and decaying amplitudes."""
    x = torch.linspace(0, 1, w)
    y = torch.full((w,), level)
    for k in range(1, roughness + 1):
        phase, freq = torch.rand(2, generator=g)
        y += amplitude / k * torch.sin(2 * math.pi * (k * (0.6 + freq) * x + phase))
    return y


def _blobs(g, h, w, n, ry, rx, y_range, x_range=(0.0, 1.0)) -> torch.Tensor:
    """A mask of n soft-edged ellipses with centres drawn in the given (fractional) ranges."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    mask = torch.zeros(h, w, dtype=torch.bool)
    for _ in range(n):
        cy = y_range[0] + (y_range[1] - y_range[0]) * torch.rand(1, generator=g).item()
        cx = x_range[0] + (x_range[1] - x_range[0]) * torch.rand(1, generator=g).item()
        s = 0.6 + 0.8 * torch.rand(1, generator=g).item()
        mask |= ((yy - cy) / (ry * s)) ** 2 + ((xx - cx) / (rx * s)) ** 2 < 1
    return mask


class SyntheticLandscapes:
    """Renders scene `seed` at `size` (int or (H, W)) with ids from `labels` (which must name the scene classes)."""

    def __init__(self, labels: LabelSet, size: int | tuple[int, int] = 256) -> None:
        missing = [c for c in SCENE_CLASSES if c not in labels.names]
        if missing:
            raise ValueError(f"the label set lacks classes the synthetic scenes use: {missing}")
        self.labels = labels
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.ids = {name: labels.id(name) for name in SCENE_CLASSES}

    def layout(self, g: torch.Generator) -> torch.Tensor:
        h, w = self.size
        ys = torch.linspace(0, 1, h)[:, None].expand(h, w)
        xs = torch.linspace(0, 1, w)[None, :].expand(h, w)
        mountain = _ridge(g, w, 0.30 + 0.12 * torch.rand(1, generator=g).item(), 0.10)
        hill = _ridge(g, w, 0.52 + 0.06 * torch.rand(1, generator=g).item(), 0.04, roughness=3)
        ground = 0.62 + 0.06 * torch.rand(1, generator=g).item()
        lab = torch.full((h, w), self.ids["sky"], dtype=torch.long)
        lab[ys > mountain] = self.ids["mountain"]
        lab[ys > hill] = self.ids["hill"]
        has_water = torch.rand(1, generator=g).item() < 0.35
        if has_water:
            lab[(ys > ground) & (ys < ground + 0.08)] = self.ids["water"]
            ground += 0.08
        # A field of wheat or grass with a meandering boundary, sprinkled with flowers (the "Wild Vegetation").
        border = (
            ground + 0.12 + 0.05 * torch.sin(2 * math.pi * (xs * 1.5 + torch.rand(1, generator=g).item()))
        )
        lab[ys > ground] = self.ids["field"]
        lab[(ys > border) | ((ys > ground) & (torch.rand(1, generator=g).item() < 0.5))] = self.ids["grass"]
        sky = lab == self.ids["sky"]
        clouds = _blobs(g, h, w, int(torch.randint(1, 5, (1,), generator=g)), 0.05, 0.14, (0.05, 0.25))
        lab[clouds & sky] = self.ids["cloud"]
        flowers = _blobs(
            g, h, w, int(torch.randint(4, 12, (1,), generator=g)), 0.025, 0.035, (ground + 0.05, 1.0)
        )
        lab[flowers & (ys > ground)] = self.ids["flower"]
        # Cypresses: tall narrow flames rooted on the ground line.
        for _ in range(int(torch.randint(0, 3, (1,), generator=g))):
            cx = torch.rand(1, generator=g).item()
            top = 0.15 + 0.2 * torch.rand(1, generator=g).item()
            half = 0.025 + 0.02 * torch.rand(1, generator=g).item()
            rel = ((ys - top) / (ground + 0.04 - top)).clamp(0, 1)
            tree = (ys > top) & (ys < ground + 0.04) & ((xs - cx).abs() < half * torch.sqrt(rel) * 1.4)
            lab[tree] = self.ids["tree"]
        return lab

    def _colour_map(self, lab: torch.Tensor, colours: dict[str, tuple[int, int, int]]) -> torch.Tensor:
        out = torch.zeros(3, *lab.shape)
        for name, rgb in colours.items():
            out[:, lab == self.ids[name]] = torch.tensor(rgb, dtype=torch.float32)[:, None] / 255.0
        return out

    def photo(self, lab: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        h, w = lab.shape
        img = self._colour_map(lab, PHOTO_COLOURS)
        texture = _fractal(g, h, w, octaves=5, base=4)
        fine = torch.rand(h, w, generator=g) - 0.5
        ys = torch.linspace(0, 1, h)[:, None]
        sky_like = (lab == self.ids["sky"]) | (lab == self.ids["cloud"])
        light = torch.where(
            sky_like, 0.85 + 0.35 * ys, 1.1 - 0.3 * ys
        )  # brighter towards the horizon; darker ground
        detail = torch.where(sky_like, 0.04 * texture, 0.12 * texture + 0.10 * fine)
        img = img * light + detail
        # Light softening of region edges as a lens would.
        img = F.avg_pool2d(F.pad(img[None], (1, 1, 1, 1), mode="replicate"), 3, stride=1)[0] * 0.5 + img * 0.5
        return img.clamp(0, 1) * 2 - 1

    def painting(self, lab: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        h, w = lab.shape
        base = self._colour_map(lab, PAINTING_COLOURS)
        # Stroke direction field: swirls in the sky (angle from a noise field), near-horizontal strokes on the
        # land bending with the terrain, vertical flames in the cypresses.
        swirl = _smooth_noise(g, h, w, 4) * math.pi * 1.5
        land = 0.35 * _smooth_noise(g, h, w, 3)
        angle = torch.where((lab == self.ids["sky"]) | (lab == self.ids["cloud"]), swirl, land)
        angle = torch.where(lab == self.ids["tree"], torch.full_like(angle, math.pi / 2), angle)
        dx, dy = torch.cos(angle), torch.sin(angle)
        noise = torch.rand(4, h, w, generator=g)
        length = max(2, round(min(h, w) / 24))
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        acc = torch.zeros(4, h, w)
        for t in range(-length, length + 1):  # line-integral convolution: average noise along the strokes
            grid = torch.stack((xx + dx * t * 2 / w, yy + dy * t * 2 / h), dim=-1)[None]
            acc += F.grid_sample(
                noise[None], grid, mode="bilinear", padding_mode="reflection", align_corners=True
            )[0]
        strokes = (acc / (2 * length + 1) - 0.5) * 3.0  # about [-1, 1], strong along strokes
        img = base * (1.0 + 0.35 * strokes[0]) + 0.12 * strokes[1:]
        # Dark contour lines where regions meet, as in the Saint-Remy landscapes.
        edge = torch.zeros_like(lab, dtype=torch.bool)
        edge[1:] |= lab[1:] != lab[:-1]
        edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
        img = torch.where(edge[None], img * 0.45, img)
        return img.clamp(0, 1) * 2 - 1

    def __call__(self, seed: int) -> Scene:
        g = torch.Generator().manual_seed(int(seed))
        lab = self.layout(g)
        return Scene(labels=lab, photo=self.photo(lab, g), painting=self.painting(lab, g))
