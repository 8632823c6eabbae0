"""Scores of a separated part against ground truth (simulations only). The concealed part is known up to an offset
and a scale (the self-supervised losses fix neither), so it is first matched to the truth's mean and std; PSNR and
SSIM are then taken with the truth's range as the data range, r is Pearson's correlation."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import structural_similarity_index_measure


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))


def match_moments(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """`x` shifted and scaled to `ref`'s mean and standard deviation."""
    x, ref = x.double(), ref.double()
    return ((x - x.mean()) / x.std().clamp_min(1e-12) * ref.std() + ref.mean()).to(ref.dtype)


def score(estimate: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """{'r', 'psnr', 'ssim'} of a (1, H, W) estimate against the (1, H, W) truth."""
    est, truth = match_moments(estimate, truth).float(), truth.float()
    span = float(truth.max() - truth.min()) or 1.0
    mse = float(((est - truth) ** 2).mean())
    psnr = 10 * torch.log10(torch.tensor(span**2 / max(mse, 1e-12))).item()
    ssim = float(structural_similarity_index_measure(est[None], truth[None], data_range=span))
    return {"r": pearson(estimate, truth), "psnr": psnr, "ssim": ssim}
