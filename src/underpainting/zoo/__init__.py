"""Published checkpoints: the reference CycleGAN / pix2pix (junyanz/pytorch-CycleGAN-and-pix2pix) and SPADE
(NVlabs/SPADE) generators as the project's own networks, with outputs identical to the reference code.

    load_published("style_vangogh.pth")                      # ResnetGenerator, eval mode
    load_published("checkpoints/coco_pretrained", "nvlabs")  # SPADEGenerator; label space from the file
    python -m underpainting.zoo download style_vangogh       # into $UNDERPAINTING_HOME/zoo
    python -m underpainting.zoo convert style_vangogh.pth --out style_vangogh.ckpt
"""

from underpainting.zoo.download import cache_dir, download, find_published, lookup
from underpainting.zoo.labels import LabelSpace, semantics
from underpainting.zoo.loader import Published, convert, load_published, read_published

__all__ = [
    "LabelSpace",
    "Published",
    "cache_dir",
    "convert",
    "download",
    "find_published",
    "load_published",
    "lookup",
    "read_published",
    "semantics",
]
