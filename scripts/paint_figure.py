"""The README's first picture (docs/images/paint_wild_vegetation.jpg): a painting of the wide Wild Vegetation sketch
with, in a column on its right, the sketch and the two paintings it was painted from.

    python benchmarks/paint.py --weights ../shared/weights/vgg16_caffe_features.pth --rows painter-512 \
        --precisions bf16 --images /tmp/paint
    python scripts/paint_figure.py /tmp/paint/painter-512_bf16.png docs/images/paint_wild_vegetation.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
SKETCH = ROOT / "examples" / "sketches" / "wide" / "wild_vegetation_512x384.png"
PANELS = [
    (SKETCH, "sketch"),
    (ROOT / "examples" / "styles" / "mountains_behind_saint_paul_1889.jpg", "Mountains Behind Saint-Paul"),
    (ROOT / "examples" / "styles" / "field_with_poppies_1889.jpg", "Field with Poppies"),
]
GAP = 4


def column(height: int, width: int) -> Image.Image:
    """The sketch and the paintings, each fitted into a third of `height` at `width`, captioned."""
    col = Image.new("RGB", (width, height), "white")
    cell = (height - GAP * (len(PANELS) - 1)) // len(PANELS)
    for i, (path, caption) in enumerate(PANELS):
        im = Image.open(path).convert("RGB")
        im.thumbnail((width, cell), Image.LANCZOS)
        x, y = (width - im.width) // 2, i * (cell + GAP)
        col.paste(im, (x, y))
        draw = ImageDraw.Draw(col)
        box = draw.textbbox((0, 0), caption)
        draw.rectangle((x, y + im.height - box[3] - 5, x + box[2] + 4, y + im.height - 1), fill="white")
        draw.text((x + 2, y + im.height - box[3] - 3), caption, fill="black")
    return col


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("painting", help="the painter's output for the wide sketch")
    p.add_argument("out", help="the figure (.jpg or .png)")
    a = p.parse_args()
    painting = Image.open(a.painting).convert("RGB")
    side = column(painting.height, painting.width // 3)
    figure = Image.new("RGB", (painting.width + GAP + side.width, painting.height), "white")
    figure.paste(painting, (0, 0))
    figure.paste(side, (painting.width + GAP, 0))
    figure.save(a.out, quality=90)
    print(f"{a.out}: {figure.width}x{figure.height}")


if __name__ == "__main__":
    main()
