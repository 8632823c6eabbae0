"""The regression baseline: the X-ray regressed, per painting, on the visible luminance; the residual is taken as
the concealed design. Linear (degree 1) or a small polynomial (degree 3 by default)."""

from __future__ import annotations

import torch

from underpainting.data.colour import luminance

FIT_PIXELS = 1_000_000  # the fit uses at most this many pixels (evenly spread): same fit, bounded memory


def _powers(t: torch.Tensor, degree: int) -> torch.Tensor:
    return torch.stack([t**k for k in range(degree + 1)], dim=-1)


def regression_baseline(
    xray: torch.Tensor, visible: torch.Tensor, degree: int = 3, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(surface, hidden): the least-squares polynomial of the visible luminance (centred to [-1, 1] for a well
    conditioned fit) that best explains the X-ray, and the X-ray minus it. `mask` (1, H, W) bool restricts the fit
    to trusted pixels."""
    if degree < 1:
        raise ValueError(f"the regression degree must be >= 1, got {degree}")
    t = (luminance(visible.float()) - 0.5) * 2  # (1, H, W)
    keep = mask.flatten() if mask is not None else torch.ones(t.numel(), dtype=torch.bool)
    idx = torch.nonzero(keep).flatten()
    idx = idx[:: max(1, idx.numel() // FIT_PIXELS)]
    a = _powers(t.flatten()[idx].double(), degree)
    coef = torch.linalg.lstsq(a, xray.flatten()[idx].double()[:, None]).solution[:, 0].float()
    surface = sum(c * t**k for k, c in enumerate(coef))
    return surface.to(xray.dtype), xray - surface
