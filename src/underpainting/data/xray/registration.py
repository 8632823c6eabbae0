"""Registering the visible photo to the X-ray: what is supported and how.

- Same aspect ratio (within 1 %): the photo is resized to the X-ray (`method: none`).
- Point pairs (`method: points`): at least 2 pairs for a similarity (scale, rotation, shift: Umeyama 1991 least
  squares), 3 for an affine (least squares), given as (x_visible, y_visible, x_xray, y_xray) in pixels.
- Automatic (`method: auto`): a similarity or affine fit maximising the normalised cross-correlation between the
  photo's luminance and the X-ray, coarse to fine, from the size-ratio start. It expects a roughly aligned pair
  (rotation within ~10 degrees, shifts within ~10 % of the size); beyond that, give point pairs.
Not supported: non-rigid warps (canvas distortion), perspective (take the photo square-on), flips.
Transforms are 2x3 matrices mapping X-ray pixel coordinates (x, y, 1) to visible-photo pixel coordinates.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from underpainting.data.colour import luminance
from underpainting.errors import DataError

log = logging.getLogger(__name__)
KINDS = ("similarity", "affine")


def fit_transform(
    visible_pts: torch.Tensor, xray_pts: torch.Tensor, kind: str = "similarity"
) -> torch.Tensor:
    """Least-squares 2x3 matrix A with visible ~ A [xray; 1] from (N, 2) point arrays."""
    if kind not in KINDS:
        raise DataError(f"registration kind must be one of {KINDS}, got {kind!r}")
    v, x = visible_pts.double(), xray_pts.double()
    need = 2 if kind == "similarity" else 3
    if v.shape != x.shape or v.dim() != 2 or v.shape[1] != 2 or len(v) < need:
        raise DataError(
            f"a {kind} registration needs at least {need} point pairs (x_visible, y_visible, x_xray, y_xray); "
            f"got {len(v)}"
        )
    xc, vc = x - x.mean(0), v - v.mean(0)
    if torch.linalg.matrix_rank(xc, tol=1e-6 * max(1.0, float(xc.abs().max()))) < (1 if need == 2 else 2):
        raise DataError(
            f"the {len(v)} X-ray points coincide or lie on one line; spread them over the painting"
        )
    if kind == "affine":
        design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
        return torch.linalg.lstsq(design, v).solution.T.float()
    # Umeyama: rotation from the SVD of the cross-covariance, scale from the variances.
    cov = vc.T @ xc / len(x)
    u, s, vt = torch.linalg.svd(cov)
    d = torch.eye(2, dtype=x.dtype)
    if torch.det(u) * torch.det(vt) < 0:
        d[1, 1] = -1.0
    rot = u @ d @ vt
    scale = (s * d.diagonal()).sum() / xc.pow(2).sum(1).mean()
    lin = scale * rot
    shift = v.mean(0) - lin @ x.mean(0)
    return torch.cat([lin, shift[:, None]], 1).float()


def similarity(scale: float, angle_deg: float, tx: float, ty: float) -> torch.Tensor:
    """The 2x3 matrix of a similarity: rotate by `angle_deg`, scale, then shift (pixels)."""
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return torch.tensor([[c, -s, tx], [s, c, ty]])


def warp(image: torch.Tensor, matrix: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resample (C, H, W) `image` onto an output grid of `size` (the X-ray's) through `matrix` (output -> input px)."""
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    src = (
        torch.stack([xs, ys, torch.ones_like(xs)], -1) @ matrix.T.float()
    )  # (h, w, 2) pixel coords in `image`
    ih, iw = image.shape[-2:]
    grid = torch.stack([(src[..., 0] + 0.5) / iw * 2 - 1, (src[..., 1] + 0.5) / ih * 2 - 1], -1)
    return F.grid_sample(
        image[None].float(), grid[None], mode="bilinear", padding_mode="border", align_corners=False
    )[0]


def scale_matrix(visible_size: tuple[int, int], xray_size: tuple[int, int]) -> torch.Tensor:
    """The resize-only transform (visible and X-ray cover the same area)."""
    (vh, vw), (xh, xw) = visible_size, xray_size
    sx, sy = vw / xw, vh / xh
    return torch.tensor([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])


def _ncc(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / (a.norm() * b.norm() + 1e-8)


def auto_register(
    visible: torch.Tensor, xray: torch.Tensor, kind: str = "similarity", levels: int = 3, steps: int = 150
) -> torch.Tensor:
    """Fit the 2x3 transform (X-ray px -> visible px) maximising the NCC of the photo's luminance and the X-ray.

    Coarse to fine over `levels` halvings, Adam on the transform's parameters (similarity: log-scale, angle, shift;
    affine: the 6 entries), starting from the resize-only transform.
    """
    if kind not in KINDS:
        raise DataError(f"registration kind must be one of {KINDS}, got {kind!r}")
    lum = luminance(visible.float())
    base = scale_matrix(tuple(visible.shape[-2:]), tuple(xray.shape[-2:]))
    # Parameters are in normalised units (fractions of the X-ray size, radians) so one lr fits every level.
    xh, xw = xray.shape[-2:]
    norm = float(max(xh, xw))
    params = torch.zeros(6 if kind == "affine" else 4, requires_grad=True)
    for level in reversed(range(levels)):
        f = 2**level
        size = (max(8, xh // f), max(8, xw // f))
        target = F.interpolate(xray[None].float(), size=size, mode="area")[0]
        smooth = F.avg_pool2d(lum[None], kernel_size=f, stride=f)[0] if f > 1 else lum
        opt = torch.optim.Adam([params], lr=0.01 / 2 ** (levels - 1 - level))
        for _ in range(steps):
            m = _compose(base, params, kind, norm)
            # Coordinates at this level: scale the output grid up to full X-ray px, the input down to `smooth`.
            lvl = torch.diag(torch.tensor([xw / size[1], xh / size[0], 1.0]))
            mv = torch.diag(
                torch.tensor([smooth.shape[-1] / lum.shape[-1], smooth.shape[-2] / lum.shape[-2]])
            )
            m_lvl = mv @ m @ lvl
            loss = -_ncc(warp(smooth, m_lvl, size), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
    m = _compose(base, params.detach(), kind, norm)
    loss = loss.detach()
    log.info("automatic %s registration: NCC %.3f, transform %s", kind, -loss.item(), m.tolist())
    return m.detach()


def _compose(base: torch.Tensor, p: torch.Tensor, kind: str, norm: float) -> torch.Tensor:
    if kind == "similarity":
        s, a = torch.exp(p[0]), p[1]
        lin = s * torch.stack(
            [torch.stack([torch.cos(a), -torch.sin(a)]), torch.stack([torch.sin(a), torch.cos(a)])]
        )
        shift = p[2:4] * norm
    else:
        lin = torch.eye(2) + p[:4].view(2, 2)
        shift = p[4:6] * norm
    delta = torch.cat([lin, shift[:, None]], 1)  # acts in X-ray px, before the size-ratio resize
    full = torch.cat([delta, torch.tensor([[0.0, 0.0, 1.0]])], 0)
    return base @ full


def register_visible(
    visible: torch.Tensor,
    xray_size: tuple[int, int],
    method: str = "none",
    kind: str = "similarity",
    points: Sequence[Sequence[float]] | None = None,
    xray: torch.Tensor | None = None,
    source: str = "the visible photo",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(visible resampled onto the X-ray grid, the 2x3 transform) for `method` 'none' | 'points' | 'auto'."""
    vh, vw = visible.shape[-2:]
    xh, xw = xray_size
    if method == "none":
        if abs(vw / vh - xw / xh) > 0.01 * (xw / xh):
            raise DataError(
                f"{source} is {vw}x{vh} px and the X-ray {xw}x{xh} px: their shapes differ, so one cannot be "
                "resized onto the other. Register them: `data.registration.method=points` with point pairs "
                "(`data.registration.points=[[x_vis,y_vis,x_xray,y_xray],...]`, at least 2) or "
                "`data.registration.method=auto`, or crop both to the same area."
            )
        m = scale_matrix((vh, vw), xray_size)
    elif method == "points":
        if not points:
            raise DataError(
                "`data.registration.method=points` needs `data.registration.points`: a list of "
                "[x_visible, y_visible, x_xray, y_xray] pixel pairs (2+ for a similarity, 3+ for an affine)"
            )
        pts = torch.tensor([list(map(float, p)) for p in points])
        if pts.dim() != 2 or pts.shape[1] != 4:
            raise DataError("each registration point must be [x_visible, y_visible, x_xray, y_xray]")
        m = fit_transform(pts[:, :2], pts[:, 2:], kind)
    elif method == "auto":
        if xray is None:
            raise ValueError("automatic registration needs the X-ray")
        m = auto_register(visible, xray, kind)
    else:
        raise DataError(f"`data.registration.method` must be none, points or auto, got {method!r}")
    return warp(visible, m, xray_size).clamp(0, 1), m
