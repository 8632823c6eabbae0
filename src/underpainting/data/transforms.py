"""The reference implementation's preprocessing (junyanz/pytorch-CycleGAN-and-pix2pix `get_transform`), with its
randomness drawn from an explicit generator so paired images and labels get the same crop and flip."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from PIL import Image

Mode = Literal["resize_and_crop", "scale_width_and_crop", "crop", "scale_width", "none"]


@dataclass(frozen=True)
class Params:
    resize: tuple[int, int]  # (w, h) after resizing
    crop: tuple[int, int, int, int] | None  # (left, top, right, bottom)
    flip: bool


@dataclass(frozen=True)
class Preprocess:
    """`resize_and_crop`: resize to load_size^2 then random crop_size^2 (CycleGAN: 286 -> 256).
    `scale_width_and_crop`: width to load_size keeping aspect, then crop. `crop`: crop only. `scale_width`: width to
    crop_size. `none`: keep size, rounded to a multiple of 4. Evaluation uses centre crops and no flip."""

    mode: Mode = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("resize_and_crop", "scale_width_and_crop", "crop", "scale_width", "none"):
            raise ValueError(f"unknown preprocess mode {self.mode!r}")
        if "crop" in self.mode and self.mode != "crop" and self.load_size < self.crop_size:
            raise ValueError(f"load_size {self.load_size} must be >= crop_size {self.crop_size}")

    @property
    def min_size(self) -> int:
        """Images smaller than this on their short side are rejected at setup."""
        return 0 if self.mode in ("none", "scale_width") else self.crop_size

    def params(self, size: tuple[int, int], generator: torch.Generator | None) -> Params:
        """Draw crop and flip for an image of `size` (w, h); `generator=None` gives the deterministic eval version."""
        w, h = size
        if self.mode == "resize_and_crop":
            w = h = self.load_size
        elif self.mode in ("scale_width_and_crop", "scale_width"):
            target = self.load_size if self.mode == "scale_width_and_crop" else self.crop_size
            w, h = target, max(round(target * h / w), self.crop_size if "crop" in self.mode else 1)
        elif self.mode == "none":
            w, h = max(4, round(w / 4) * 4), max(4, round(h / 4) * 4)
        crop = None
        if self.mode in ("resize_and_crop", "scale_width_and_crop", "crop"):
            c = self.crop_size
            if generator is None:
                x, y = (w - c) // 2, (h - c) // 2
            else:
                x = int(torch.randint(0, w - c + 1, (1,), generator=generator))
                y = int(torch.randint(0, h - c + 1, (1,), generator=generator))
            crop = (x, y, x + c, y + c)
        flip = bool(self.flip and generator is not None and torch.rand(1, generator=generator).item() < 0.5)
        return Params((w, h), crop, flip)

    def apply(self, img: Image.Image, p: Params, resample: int = Image.BICUBIC) -> Image.Image:
        if img.size != p.resize:
            img = img.resize(p.resize, resample)
        if p.crop is not None:
            img = img.crop(p.crop)
        return img.transpose(Image.FLIP_LEFT_RIGHT) if p.flip else img
