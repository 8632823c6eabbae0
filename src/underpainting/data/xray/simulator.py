"""Simulated X-radiographs of a painting over a concealed one: evaluation data with a ground truth.

No ground truth exists for real panels, so separation is measured on mixtures built from two paintings:

    X = PSF * (f_s(surface) + f_h(hidden)) + weave + stretcher bars + plate seams + noise

Each layer's X-ray opacity f is a lead-white-like response of its colour (lead white, the dominant absorber of
19th-century grounds and lights, makes light passages opaque; a power > 1 of the luminance). The layers add because
radiographs record attenuation (Beer-Lambert: the exponents add; film density and log-converted detector values
are linear in them). The PSF is the detector/film blur the colour photograph does not have. The acquisition
artefacts are no part of either painting; the ground truth hidden X-ray is `PSF * f_h(hidden)` alone. Images are
float tensors in [0, 1]: visible (3, H, W) RGB, X-rays (1, H, W). Same seed, same mixture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from underpainting.data.colour import LUMA


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (..., H, W) with reflected borders; sigma in px (0: unchanged)."""
    if sigma <= 0:
        return x
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    shape = x.shape
    y = x.reshape(-1, 1, *shape[-2:])
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    return y.reshape(shape)


@dataclass
class LeadWhiteResponse:
    """X-ray opacity of one paint layer: `gain * (w . rgb) ** gamma`.

    `weights` w = luminance by default (lead white content follows lightness); other weights model heavy coloured
    pigments (vermilion, lead-tin yellow: more weight on red). gamma > 1: light, lead-rich passages dominate.
    """

    gamma: float = 2.0
    gain: float = 1.0
    weights: tuple[float, float, float] = LUMA

    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        w = torch.tensor(self.weights, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
        return self.gain * (rgb * w).sum(dim=-3, keepdim=True).clamp(0, 1) ** self.gamma


@dataclass
class Weave:
    """Canvas weave: two thread systems (warp, weft) as jittered cosines, periods in px, a slight skew."""

    amplitude: float = 0.04
    period: tuple[float, float] = (5.0, 5.6)
    angle_deg: float = 2.0
    jitter: float = 0.6  # phase wander of the threads (rad), smooth along each thread

    def __call__(self, g: torch.Generator, h: int, w: int) -> torch.Tensor:
        if self.amplitude == 0:
            return torch.zeros(1, h, w)
        yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
        a = math.radians(self.angle_deg)
        u, v = xx * math.cos(a) + yy * math.sin(a), -xx * math.sin(a) + yy * math.cos(a)
        wander = [_smooth_field(g, h, w, 6) * self.jitter for _ in range(2)]
        warp = torch.cos(2 * math.pi * u / self.period[0] + wander[0])
        weft = torch.cos(2 * math.pi * v / self.period[1] + wander[1])
        return (self.amplitude * 0.5 * (warp + weft))[None]


@dataclass
class Band:
    """A straight band: `axis` 'vertical' (constant along y) or 'horizontal', centre and width as fractions."""

    axis: str
    centre: float
    width: float


def default_bars() -> list[Band]:
    # The four members of a stretcher seen through the canvas, plus a vertical cross-bar.
    # (the outer members run to the canvas edge: their outer bevel lies outside the picture)
    return [
        Band("vertical", 0.025, 0.09),
        Band("vertical", 0.975, 0.09),
        Band("horizontal", 0.025, 0.09),
        Band("horizontal", 0.975, 0.09),
        Band("vertical", 0.5, 0.06),
    ]


@dataclass
class StretcherBars:
    """Stretcher bars / cradling: smooth-edged bands of extra attenuation along straight lines."""

    amplitude: float = 0.08
    bands: list[Band] = field(default_factory=default_bars)
    softness: float = 0.2  # edge ramp as a fraction of the band width (the bars' bevel)

    def __call__(self, h: int, w: int) -> torch.Tensor:
        out = torch.zeros(1, h, w)
        for b in self.bands:
            band = Band(**b) if isinstance(b, dict) else b
            n = w if band.axis == "vertical" else h
            t = (torch.arange(n).float() + 0.5) / n
            half, ramp = band.width / 2, max(1e-6, band.width * self.softness)
            prof = ((half - (t - band.centre).abs()) / ramp + 0.5).clamp(0, 1)
            prof = prof * prof * (3 - 2 * prof)  # smoothstep
            out += self.amplitude * (prof.view(1, 1, n) if band.axis == "vertical" else prof.view(1, n, 1))
        return out


@dataclass
class PlateSeams:
    """A mosaic of `rows` x `cols` radiographic plates, each with its own exposure offset (std `offset`)."""

    rows: int = 2
    cols: int = 2
    offset: float = 0.06

    def __call__(self, g: torch.Generator, h: int, w: int) -> torch.Tensor:
        if self.offset == 0 or self.rows * self.cols == 1:
            return torch.zeros(1, h, w)
        offsets = torch.randn(self.rows, self.cols, generator=g) * self.offset
        offsets -= offsets.mean()
        ry = (torch.arange(h) * self.rows // h).clamp(max=self.rows - 1)
        rx = (torch.arange(w) * self.cols // w).clamp(max=self.cols - 1)
        return offsets[ry][:, rx][None]


def _smooth_field(g: torch.Generator, h: int, w: int, cells: int) -> torch.Tensor:
    grid = torch.randn(1, 1, cells, cells, generator=g)
    return F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=True)[0, 0]


@dataclass
class XRayMixture:
    """One simulated case: the mixed X-ray, the visible photo, the ground truth parts, the artefacts."""

    xray: torch.Tensor  # (1, H, W) what the radiograph records
    visible: torch.Tensor  # (3, H, W) RGB photo of the surface painting
    hidden: torch.Tensor  # (1, H, W) ground truth: the concealed design's X-ray alone
    surface: torch.Tensor  # (1, H, W) ground truth: the surface painting's X-ray alone
    artefacts: dict[str, torch.Tensor]  # weave, bars, seams, noise: (1, H, W) each


@dataclass
class XRaySimulator:
    """Builds `XRayMixture`s from two RGB paintings (3, H, W) in [0, 1]; deterministic from `seed`.

    Paintings are in [0, 1] (not the generators' [-1, 1]). The hidden painting is resized to the surface's size. Set an artefact's amplitude/offset/noise to 0 to leave it
    out (`simple()` gives a mixture with none).
    """

    surface_response: LeadWhiteResponse = field(default_factory=LeadWhiteResponse)
    hidden_response: LeadWhiteResponse = field(default_factory=lambda: LeadWhiteResponse(gain=0.8))
    psf_sigma: float = 1.0  # px: film/detector blur, absent from the photo
    weave: Weave = field(default_factory=Weave)
    bars: StretcherBars = field(default_factory=StretcherBars)
    seams: PlateSeams = field(default_factory=PlateSeams)
    noise: float = 0.01  # Gaussian (quantum) noise std
    hidden_rotation: int = 0  # degrees, a multiple of 90: reused canvases are often turned
    seed: int = 0

    @classmethod
    def simple(cls, **kw) -> XRaySimulator:
        """Two layers, their responses and the PSF only: no weave, bars, seams or noise."""
        return cls(
            weave=Weave(amplitude=0.0),
            bars=StretcherBars(amplitude=0.0),
            seams=PlateSeams(offset=0.0),
            noise=0.0,
            **kw,
        )

    def __call__(self, surface: torch.Tensor, hidden: torch.Tensor) -> XRayMixture:
        surface, hidden = _as_rgb01(surface, "surface"), _as_rgb01(hidden, "hidden")
        if self.hidden_rotation % 90:
            raise ValueError(f"hidden_rotation must be a multiple of 90 degrees, got {self.hidden_rotation}")
        hidden = torch.rot90(hidden, k=self.hidden_rotation // 90, dims=(-2, -1))
        h, w = surface.shape[-2:]
        if hidden.shape[-2:] != (h, w):
            hidden = F.interpolate(hidden[None], size=(h, w), mode="bicubic", antialias=True)[0].clamp(0, 1)
        g = torch.Generator().manual_seed(int(self.seed))
        part_s = gaussian_blur(self.surface_response(surface), self.psf_sigma)
        part_h = gaussian_blur(self.hidden_response(hidden), self.psf_sigma)
        artefacts = {
            "weave": self.weave(g, h, w),
            "bars": self.bars(h, w),
            "seams": self.seams(g, h, w),
            "noise": torch.randn(1, h, w, generator=g) * self.noise,
        }
        xray = part_s + part_h + sum(artefacts.values())
        return XRayMixture(xray, surface, part_h, part_s, artefacts)


def _as_rgb01(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 3 or x.shape[0] != 3:
        raise ValueError(f"the {name} painting must be an RGB image (3, H, W), got shape {tuple(x.shape)}")
    return x.float().clamp(0, 1)
