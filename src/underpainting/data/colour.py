"""Colour control for neural style transfer (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style
Transfer", Sec. 5): keep the content's colours either by transferring luminance only (5.1) or by recolouring the
style image to the content's colour statistics before transfer (5.2). Also the project's one luma (`luminance`).

Images are (B, 3, H, W) RGB in [-1, 1]; the colour maths runs on [0, 1] values.
"""

from __future__ import annotations

import torch

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma weights: YIQ's Y, and the X-ray reference code's rgb2gray

# NTSC YIQ (the colour space the paper uses for luminance-only transfer).
_RGB_TO_YIQ = torch.tensor(
    [
        LUMA,
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ]
)
COLOUR_MATCH_METHODS = ("chol", "pca", "sym", "histogram")


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> (..., 1, H, W) BT.601 luma."""
    w = torch.tensor(LUMA, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    return (rgb * w).sum(dim=-3, keepdim=True)


def rgb_to_yiq(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] RGB -> YIQ of the [0, 1] image (Y in [0, 1])."""
    m = _RGB_TO_YIQ.to(images.device, torch.float32)
    return torch.einsum("ij,bjhw->bihw", m, (images.float() + 1) / 2)


def yiq_to_rgb(yiq: torch.Tensor) -> torch.Tensor:
    """Inverse of `rgb_to_yiq`, clamped back to [-1, 1]."""
    m = torch.linalg.inv(_RGB_TO_YIQ.double()).float().to(yiq.device)
    return (torch.einsum("ij,bjhw->bihw", m, yiq.float()) * 2 - 1).clamp(-1, 1)


def luminance_image(images: torch.Tensor) -> torch.Tensor:
    """The luminance as a grey 3-channel image in [-1, 1] (what VGG sees in luminance-only transfer)."""
    y = rgb_to_yiq(images)[:, :1]
    return (y * 2 - 1).expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Grey style image whose luminance has the content's mean and std (Sec. 5.1: L_s' = σ_c/σ_s (L_s − μ_s) + μ_c),
    so that the luminance statistics of the two inputs agree before luminance-only transfer."""
    ys, yc = rgb_to_yiq(style)[:, :1], rgb_to_yiq(content)[:, :1]
    mu_s, sd_s = ys.mean(dim=(1, 2, 3), keepdim=True), ys.std(dim=(1, 2, 3), keepdim=True)
    mu_c, sd_c = yc.mean(dim=(1, 2, 3), keepdim=True), yc.std(dim=(1, 2, 3), keepdim=True)
    y = (ys - mu_s) * (sd_c / sd_s.clamp_min(1e-6)) + mu_c
    return (y * 2 - 1).clamp(-1, 1).expand(-1, 3, -1, -1).contiguous()


def transfer_luminance(stylised: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Combine the stylised image's luminance with the content's chroma (I, Q): the output keeps the content's
    colours (Sec. 5.1). `content` is resized to `stylised` if needed."""
    if content.shape[-2:] != stylised.shape[-2:]:
        content = torch.nn.functional.interpolate(
            content.float(), size=stylised.shape[-2:], mode="bilinear", align_corners=False, antialias=True
        )
    y = rgb_to_yiq(stylised)[:, :1]
    iq = rgb_to_yiq(content)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], dim=1))


def _sqrtm(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    vals = vals.clamp_min(1e-10)
    return vecs @ torch.diag(vals.rsqrt() if inverse else vals.sqrt()) @ vecs.T


def match_colour(source: torch.Tensor, target: torch.Tensor, method: str = "pca") -> torch.Tensor:
    """Recolour `source` so its pixel colours have `target`'s statistics (Sec. 5.2: colour histogram matching).

    Linear methods map x -> A(x − μ_s) + μ_t with A Σ_s Aᵀ = Σ_t:
    - ``chol``: A = L_t L_s⁻¹ (Cholesky factors);
    - ``pca``: A = Σ_t^½ Σ_s^-½ (the "3D colour matching" of Image Analogies, Hertzmann et al. 2001, which the paper
      uses);
    - ``sym``: A = Σ_s^-½ (Σ_s^½ Σ_t Σ_s^½)^½ Σ_s^-½, the symmetric (Monge-Kantorovich) solution.
    ``histogram`` instead matches each RGB channel's full histogram exactly (rank mapping).
    Works per batch item; returns [-1, 1] RGB like the input.
    """
    if method not in COLOUR_MATCH_METHODS:
        raise ValueError(
            f"colour match method must be one of {', '.join(COLOUR_MATCH_METHODS)}, got {method!r}"
        )
    if source.shape[0] != target.shape[0]:
        target = target.expand(source.shape[0], -1, -1, -1)
    out = []
    for s_img, t_img in zip(source.float(), target.float(), strict=True):
        s = ((s_img + 1) / 2).reshape(3, -1).double()
        t = ((t_img + 1) / 2).reshape(3, -1).double()
        if method == "histogram":
            res = torch.empty_like(s)
            for c in range(3):
                order = s[c].argsort()
                t_sorted = t[c].sort().values
                idx = torch.linspace(0, t_sorted.numel() - 1, s.shape[1], dtype=torch.float64).round().long()
                res[c, order] = t_sorted[idx]
        else:
            mu_s, mu_t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
            eye = 1e-5 * torch.eye(3, dtype=torch.float64)
            cov_s = torch.cov(s) + eye
            cov_t = torch.cov(t) + eye
            if method == "chol":
                a = torch.linalg.cholesky(cov_t) @ torch.linalg.inv(torch.linalg.cholesky(cov_s))
            elif method == "pca":
                a = _sqrtm(cov_t) @ _sqrtm(cov_s, inverse=True)
            else:
                s_half, s_inv_half = _sqrtm(cov_s), _sqrtm(cov_s, inverse=True)
                a = s_inv_half @ _sqrtm(s_half @ cov_t @ s_half) @ s_inv_half
            res = a @ (s - mu_s) + mu_t
        out.append((res.float().reshape(s_img.shape) * 2 - 1).clamp(-1, 1))
    return torch.stack(out).to(source.dtype)
