"""The regression baseline: the X-ray regressed, per painting, on the visible luminance; the residual is taken as
the concealed design. Linear (degree 1) or a small polynomial (degree 3 by default)."""

from __future__ import annotations

import torch

from underpainting.data.xray import luminance


def luminance_design(visible: torch.Tensor, degree: int) -> torch.Tensor:
    """(3, H, W) RGB in [0, 1] -> (H*W, degree + 1) powers of the centred luminance (well conditioned)."""
    t = (luminance(visible.double()).flatten() - 0.5) * 2
    return torch.stack([t**k for k in range(degree + 1)], dim=1)


def regression_baseline(
    xray: torch.Tensor, visible: torch.Tensor, degree: int = 3, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(surface, hidden): the least-squares polynomial of the visible luminance that best explains the X-ray, and
    the X-ray minus it. `mask` (1, H, W) bool restricts the fit to trusted pixels (e.g. away from artefacts)."""
    if degree < 1:
        raise ValueError(f"the regression degree must be >= 1, got {degree}")
    a = luminance_design(visible, degree)
    y = xray.double().flatten()
    keep = mask.flatten() if mask is not None else slice(None)
    coef = torch.linalg.lstsq(a[keep], y[keep, None]).solution
    surface = (a @ coef).reshape(xray.shape).to(xray.dtype)
    return surface, xray - surface
