"""Acquisition artefacts, removed before separation so they end up in neither painting (each switchable).

- Canvas weave (`remove_weave`): periodic, so it is a set of sharp peaks in the Fourier spectrum, far above the
  smooth spectrum of painted passages; those peaks are notched out.
- Plate seams (`remove_seams`): a mosaic of plates with different exposures gives straight steps across the whole
  image; each plate (cell between seams) gets the offset that cancels the steps (least squares over the grid).
- Stretcher bars / cradling (`remove_bars`): straight, smooth-edged bands running across the whole image; each band
  is found from edges present all along it and its profile above the neighbouring level is subtracted.

Seams and bars are found on the X-ray minus its regression on the visible luminance (`guide`), so edges of the
surface painting do not look like artefacts. Each function returns (cleaned X-ray, the removed component).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------------- weave
def weave_notch(
    x: torch.Tensor, threshold: float = 4.0, min_frequency: float = 0.06, max_peaks: int = 16
) -> torch.Tensor:
    """The notch mask (H, W) in [0, 1] (0 at weave peaks) of the unshifted 2D spectrum of (1, H, W) `x`.

    Weave peaks are local maxima (5x5 bins) whose magnitude exceeds `threshold` times the mean of the bins around
    them (a 31x31 ring, its 9x9 centre left out, as a peak spreads with the threads' wander), above `min_frequency`
    cycles/px (painted passages dominate below); the `max_peaks` strongest are notched with soft discs of radius
    1.2 % of the size (at least 2 bins), which cover that spread.
    """
    spec = torch.fft.fft2(x[0].float() - x.float().mean())
    mag = torch.fft.fftshift(spec.abs())[None, None]
    del spec
    h, w = mag.shape[-2:]
    outer = F.avg_pool2d(F.pad(mag, (15, 15, 15, 15), mode="reflect"), 31, stride=1) * 31**2
    inner = F.avg_pool2d(F.pad(mag, (4, 4, 4, 4), mode="reflect"), 9, stride=1) * 9**2
    ratio = (mag / ((outer - inner) / (31**2 - 9**2)).clamp_min(1e-12))[0, 0]
    del outer, inner
    fy = torch.fft.fftshift(torch.fft.fftfreq(h))[:, None]
    fx = torch.fft.fftshift(torch.fft.fftfreq(w))[None, :]
    local_max = mag[0, 0] == F.max_pool2d(mag, 5, stride=1, padding=2)[0, 0]
    candidate = local_max & (ratio > threshold) & ((fy**2 + fx**2).sqrt() > min_frequency)
    score = torch.where(candidate, ratio, torch.zeros_like(ratio)).flatten()
    peaks = torch.topk(score, min(max_peaks, int(candidate.sum()))).indices
    radius = max(2.0, 0.012 * max(h, w))
    reach = int(radius) + 3
    keep = torch.ones(h, w)
    for p in peaks.tolist():  # a soft disc around each peak, drawn in its window only
        cy, cx = p // w, p % w
        y0, y1, x0, x1 = (
            max(0, cy - reach),
            min(h, cy + reach + 1),
            max(0, cx - reach),
            min(w, cx + reach + 1),
        )
        yy, xx = torch.meshgrid(torch.arange(y0, y1).float(), torch.arange(x0, x1).float(), indexing="ij")
        d = ((yy - cy) ** 2 + (xx - cx) ** 2).sqrt()
        keep[y0:y1, x0:x1] *= ((d - radius) / 1.5 + 0.5).clamp(0, 1)
    return torch.fft.ifftshift(keep)


def remove_weave(
    x: torch.Tensor, threshold: float = 4.0, min_frequency: float = 0.06
) -> tuple[torch.Tensor, torch.Tensor]:
    """Notch-filter the canvas weave out of (1, H, W) `x` (see `weave_notch`)."""
    keep = weave_notch(x, threshold, min_frequency)
    weave = torch.fft.ifft2(torch.fft.fft2(x[0].float()) * (1 - keep)).real[None]
    log.info("weave: %d frequency bins notched", int((keep < 0.5).sum()))
    return x - weave, weave


# ----------------------------------------------------------------------------------------------------- seams
def _robust_scale(v: torch.Tensor) -> torch.Tensor:
    return 1.4826 * (v - v.median()).abs().median().clamp_min(1e-6)


def _steps(r: torch.Tensor, reach: int) -> torch.Tensor:
    """(n + 1, W): at row i, the mean of the `reach` rows from i less the mean of the `reach` rows before i (zero
    where either side leaves the image)."""
    n = r.shape[0]
    c = torch.cat([r.new_zeros(1, r.shape[1]), r.cumsum(0)])
    out = r.new_zeros(n + 1, r.shape[1])
    i = torch.arange(reach, n - reach + 1)
    out[i] = (c[i + reach] - 2 * c[i] + c[i - reach]) / reach
    return out


def _consistency(steps: torch.Tensor, segments: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the share of pixels whose step has their strip's sign, reached in 3/4 of `segments` strips along
    the row (a straight artefact changes the level the same way all along; a painted edge only over part of it),
    and each strip's median step (segments, rows)."""
    shares, medians = [], []
    for s in steps.chunk(segments, dim=1):
        med = s.median(dim=1, keepdim=True).values
        shares.append((torch.sign(s) == torch.sign(med)).double().mean(1))
        medians.append(med[:, 0])
    return torch.stack(shares).quantile(0.25, dim=0), torch.stack(medians)


def find_seams(
    r: torch.Tensor, axis: int, segments: int = 8, consistency: float = 0.7, min_plate: float = 0.15
) -> list[int]:
    """Positions i of straight, sharp steps between pixel i-1 and i along `axis` (0: rows, i.e. horizontal seams;
    1: columns) of the (H, W) residual `r`: the 1-px step has one sign along most of the line (`consistency`, the
    share in 3/4 of `segments` strips), is at least twice the steps 2-3 px beside it (a plate edge is sharp,
    a stretcher bar's or a painted edge is not) and the level stays changed 4 px on (a drawn line does not)."""
    if axis == 1:
        r = r.T
    share, med = _consistency(_steps(r, 1), segments)
    size = med.abs().median(0).values
    wide = (_steps(r, 4) * torch.sign(_steps(r, 1))).median(1).values  # the level change 4 px either side
    found = []
    for i in torch.nonzero(share >= consistency).flatten().tolist():
        if not 4 <= i <= len(size) - 5 or size[i] < size[i - 1 : i + 2].max():
            continue
        beside = torch.stack([size[i - 3 : i - 1], size[i + 2 : i + 4]]).max()
        if size[i] > 2 * beside and wide[i] > 0.5 * size[i]:  # sharp, and a step (a thin line goes back)
            found.append(i)
    # Plates are large: of candidates closer than `min_plate` of the size (or to a border), keep the strongest.
    gap = min_plate * len(size)
    kept: list[int] = []
    for i in sorted(found, key=lambda i: -float(size[i])):
        if min(i, len(size) - 1 - i) >= gap and all(abs(i - k) >= gap for k in kept):
            kept.append(i)
    return sorted(kept)


def remove_seams(
    x: torch.Tensor, guide: torch.Tensor | None = None, consistency: float = 0.7
) -> tuple[torch.Tensor, torch.Tensor]:
    """Find straight plate seams across (1, H, W) `x` and level each plate of the resulting grid."""
    r = (x - guide if guide is not None else x)[0].double()
    h, w = r.shape
    ys, xs = (
        [0, *find_seams(r, 0, consistency=consistency), h],
        [0, *find_seams(r, 1, consistency=consistency), w],
    )
    rows, cols = len(ys) - 1, len(xs) - 1
    if rows * cols == 1:
        return x, torch.zeros_like(x)
    eqs = []
    for i in range(rows):
        for j in range(cols):
            y0, y1, x0, x1 = ys[i], ys[i + 1], xs[j], xs[j + 1]
            if j + 1 < cols:
                eqs.append((i * cols + j + 1, i * cols + j, _step(r[y0:y1].T, x1)))
            if i + 1 < rows:
                eqs.append(((i + 1) * cols + j, i * cols + j, _step(r[:, x0:x1], y1)))
    a = torch.zeros(len(eqs) + 1, rows * cols, dtype=torch.float64)
    b = torch.zeros(len(eqs) + 1, dtype=torch.float64)
    for k, (p, q, s) in enumerate(eqs):
        a[k, p], a[k, q], b[k] = 1.0, -1.0, s
    a[-1] = 1.0
    offsets = torch.linalg.lstsq(a, b[:, None]).solution[:, 0].view(rows, cols)
    seams = torch.zeros(h, w, dtype=torch.float64)
    for i in range(rows):
        for j in range(cols):
            seams[ys[i] : ys[i + 1], xs[j] : xs[j + 1]] = offsets[i, j]
    log.info(
        "plate seams: %d x %d plates, offsets %s",
        rows,
        cols,
        [round(v, 4) for v in offsets.flatten().tolist()],
    )
    seams = seams.float()[None]
    return x - seams, seams


def _step(r: torch.Tensor, at: int, reach: int = 1) -> float:
    """Median over the seam of the mean level of the `reach` rows after it less that of the `reach` rows before,
    less the same change measured just beside the seam (the painting's own gradient there)."""

    def level(a: int, b: int) -> torch.Tensor:
        return r[max(0, a) : max(0, a) + max(1, b - a)].mean(0)

    jump = level(at, at + reach) - level(at - reach, at)
    beside = (
        level(at - reach, at)
        - level(at - 2 * reach, at - reach)
        + level(at + reach, at + 2 * reach)
        - level(at, at + reach)
    ) / 2
    return float((jump - beside).median())


# ----------------------------------------------------------------------------------------------------- bars
@dataclass
class BandFound:
    axis: str  # 'vertical' (constant along y) or 'horizontal'
    start: int
    stop: int


def find_bands(
    r: torch.Tensor,
    axis: str,
    segments: int = 8,
    ramp: int = 0,
    consistency: float = 0.8,
    max_width: float = 0.2,
) -> list[BandFound]:
    """Straight bands in the (H, W) residual `r`: pairs of opposite edges running all along the band. The level
    change across each position (`ramp` px either side; default 1.5 % of the size) has one sign along most of the
    line (`consistency`: the share in 3/4 of `segments` strips) at an edge of a bar, and a size 5 robust standard
    deviations above the usual change; edges are the strongest such positions within a ramp."""
    src = (r if axis == "vertical" else r.T).T  # rows of src run across the bands
    n = src.shape[0]
    ramp = ramp or max(2, round(0.015 * n))
    share, med = _consistency(_steps(src, ramp), segments)
    strength = med.median(0).values
    big = strength.abs() > 5 * _robust_scale(strength)  # and a real change, not a smooth painted gradient
    edges: list[tuple[int, float]] = []
    for i in torch.nonzero((share >= consistency) & big).flatten().tolist():
        if strength[i].abs() == strength[max(0, i - ramp) : i + ramp + 1].abs().max() and strength[i] != 0:
            edges.append((i, float(strength[i])))
    bands: list[BandFound] = []
    used: set[int] = set()
    limit = max_width * n
    for k, (i, s) in enumerate(edges):
        if k in used:
            continue
        partner = next(
            (
                m
                for m in range(k + 1, len(edges))
                if m not in used and edges[m][1] * s < 0 and edges[m][0] - i <= limit
            ),
            None,
        )
        if partner is not None:
            bands.append(BandFound(axis, i, edges[partner][0]))
            used |= {k, partner}
        elif i <= limit and s < 0 and not any(b.start == 0 for b in bands):
            bands.append(BandFound(axis, 0, i))  # against the first border: only its inner edge is seen
            used.add(k)
        elif n - i <= limit and s > 0 and not any(b.stop == n for b in bands):
            bands.append(BandFound(axis, i, n))
            used.add(k)
    merged: list[BandFound] = []
    for b in sorted(bands, key=lambda b: b.start):
        if merged and b.start <= merged[-1].stop:
            merged[-1].stop = max(merged[-1].stop, b.stop)
        else:
            merged.append(b)
    return merged


def remove_bars(
    x: torch.Tensor, guide: torch.Tensor | None = None, consistency: float = 0.8, max_width: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Find straight bands (stretcher bars, cradle members) across (1, H, W) `x` and subtract their profiles."""
    r = (x - guide if guide is not None else x)[0].double()
    h, w = r.shape
    bars = torch.zeros(h, w, dtype=torch.float64)
    found = []
    for axis in ("vertical", "horizontal"):
        src = r if axis == "vertical" else r.T
        n = src.shape[1]
        ramp = max(2, round(0.015 * n))
        prof = src.median(dim=0).values  # (n,) the level along the band's normal
        out = torch.zeros(n, dtype=torch.float64)
        for b in find_bands(r, axis, consistency=consistency, max_width=max_width):
            a0, a1 = max(0, b.start - ramp), min(n, b.stop + ramp)  # the band with its soft edges
            left = prof[max(0, a0 - ramp) : a0].median() if a0 > 0 else None
            right = prof[a1 : min(n, a1 + ramp)].median() if a1 < n else None
            left, right = (left if left is not None else right), (right if right is not None else left)
            if left is None:
                continue
            t = torch.linspace(0, 1, a1 - a0, dtype=torch.float64)
            out[a0:a1] += prof[a0:a1] - (left * (1 - t) + right * t)
            found.append((axis, b.start, b.stop))
        bars += out[None, :] if axis == "vertical" else out[:, None]
    log.info("stretcher bars / bands: %s", found or "none")
    bars = bars.float()[None]
    return x - bars, bars


# ----------------------------------------------------------------------------------------------------- all
@dataclass
class ArtefactRemoval:
    """Which artefacts to remove (`conf/data/xray.yaml: artefacts`), in the order seams, bars, weave."""

    weave: bool = True
    bars: bool = True
    seams: bool = True
    weave_threshold: float = 4.0
    weave_min_frequency: float = 0.06
    seam_consistency: float = 0.7
    bar_consistency: float = 0.8
    bar_max_width: float = 0.2

    def __call__(self, x: torch.Tensor, guide_fn=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Clean (1, H, W) `x`; `guide_fn(x)` gives the visible-explained part (re-fitted after each step)."""
        removed: dict[str, torch.Tensor] = {}
        # Seams and bars first: their straight edges are lines through the spectrum the weave notch must not see.
        if self.seams:
            x, removed["seams"] = remove_seams(x, guide_fn(x) if guide_fn else None, self.seam_consistency)
        if self.bars:
            x, removed["bars"] = remove_bars(
                x, guide_fn(x) if guide_fn else None, self.bar_consistency, self.bar_max_width
            )
        if self.weave:
            x, removed["weave"] = remove_weave(x, self.weave_threshold, self.weave_min_frequency)
        return x, removed
