"""Write the example sketches in examples/sketches/ (run once; the PNGs are committed).

Three come from the synthetic generator's layouts (256x256, and an odd 250x190 that is not a multiple of any
network stride); one is drawn with wobbly brush-like shapes: a flowering field before a mountain, after the
composition of Van Gogh's lost "Wild Vegetation" (1889). All are painted in conf/labels/landscape.yaml's palette.

    python scripts/make_example_sketches.py [out_dir]
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from underpainting.data.labels import LabelSet
from underpainting.data.sketch import encode_sketch
from underpainting.data.synthetic import SyntheticLandscapes

ROOT = Path(__file__).resolve().parents[1]


def wobbly_ridge(
    rng: random.Random, w: int, base: float, amp: float, step: int = 6
) -> list[tuple[float, float]]:
    """A hand-drawn skyline: a few broad bumps plus jitter, as (x, y) points left to right."""
    phases = [rng.uniform(0, 2 * math.pi) for _ in range(3)]
    pts = []
    for x in range(0, w + step, step):
        t = x / w
        y = base - amp * (
            math.sin(math.pi * t * 1.2 + phases[0]) * 0.6 + math.sin(2 * math.pi * t * 2.3 + phases[1]) * 0.3
        )
        pts.append((min(x, w), y + rng.uniform(-1.5, 1.5)))
    return pts


def blob(rng: random.Random, cx: float, cy: float, r: float, n: int = 9) -> list[tuple[float, float]]:
    """An irregular, rounded dab of paint around (cx, cy): a wobbling radius and a little jitter."""
    k, phase = rng.choice((2, 3, 4)), rng.uniform(0, 2 * math.pi)
    pts = []
    for i in range(max(n, 16)):
        a = 2 * math.pi * i / max(n, 16)
        rr = r * (1 + 0.25 * math.sin(k * a + phase)) * rng.uniform(0.9, 1.1)
        pts.append((cx + rr * math.cos(a), cy + 0.7 * rr * math.sin(a)))
    return pts


def wild_vegetation(labels: LabelSet, w: int = 256, h: int = 256, seed: int = 1889) -> Image.Image:
    rng = random.Random(seed)
    col = {c.name: c.rgb for c in labels.classes}
    img = Image.new("RGB", (w, h), col["sky"])
    d = ImageDraw.Draw(img)  # no anti-aliasing: every pixel is an exact palette colour
    for _ in range(3):  # swirling clouds
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.06, 0.22) * h
        d.polygon(blob(rng, cx, cy, rng.uniform(14, 24), 24), fill=col["cloud"])
    mountain = wobbly_ridge(rng, w, 0.38 * h, 0.18 * h)
    d.polygon([(0, h), *mountain, (w, h)], fill=col["mountain"])
    px, py = min(mountain, key=lambda p: p[1])  # snow on the highest peak, below the ridge line
    d.polygon(
        [(px - 14, py + 12), (px, py + 1), (px + 14, py + 12), (px + 5, py + 9), (px - 5, py + 11)],
        fill=col["snow"],
    )
    hill = wobbly_ridge(rng, w, 0.55 * h, 0.04 * h)
    d.polygon([(0, h), *hill, (w, h)], fill=col["hill"])
    field = wobbly_ridge(rng, w, 0.63 * h, 0.02 * h)
    d.polygon([(0, h), *field, (w, h)], fill=col["grass"])
    for _ in range(5):  # clumps of bushes along the foot of the hill
        d.polygon(
            blob(rng, rng.uniform(0, w), rng.uniform(0.62, 0.7) * h, rng.uniform(8, 14)),
            fill=col["bush_plant"],
        )
    for _ in range(70):  # the flowering field: dabs thicker towards the foreground
        y = rng.uniform(0.66, 1.0) * h
        r = 2.5 + 7 * (y / h - 0.66) / 0.34 * rng.uniform(0.5, 1.0)
        d.polygon(blob(rng, rng.uniform(0, w), y, r, 7), fill=col["flower"])
    for _ in range(3):  # a few rocks in the grass
        d.polygon(
            blob(rng, rng.uniform(0, w), rng.uniform(0.75, 0.95) * h, rng.uniform(5, 8), 6), fill=col["rock"]
        )
    return img


def main(out_dir: Path) -> list[Path]:
    labels = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, size, seed in (("synthetic_seed3", (256, 256), 3), ("synthetic_seed11", (256, 256), 11),
                             ("synthetic_250x190", (190, 250), 5)):  # fmt: skip
        gen = SyntheticLandscapes(labels, size)
        import torch

        ids = gen.layout(torch.Generator().manual_seed(seed))
        path = out_dir / f"{name}.png"
        encode_sketch(ids, labels).save(path, optimize=True)
        written.append(path)
    path = out_dir / "wild_vegetation.png"
    wild_vegetation(labels).save(path, optimize=True)
    written.append(path)
    # the same composition on a wide 512x384 canvas (the painter's benchmark and the README picture); in a subfolder,
    # so that painting the folder (make demo) stays quick
    path = out_dir / "wide" / "wild_vegetation_512x384.png"
    path.parent.mkdir(exist_ok=True)
    wild_vegetation(labels, 512, 384).save(path, optimize=True)
    written.append(path)
    return written


if __name__ == "__main__":
    for p in main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "examples" / "sketches"):
        print(p, f"{p.stat().st_size / 1024:.1f} KB")
