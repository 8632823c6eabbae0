"""ArtFID (Wright & Ommer 2022, "ArtFID: Quantitative Evaluation of Neural Style Transfer", Eq. 3):

    ArtFID = (1 + LPIPS(content, stylised)) * (1 + FID(style images, stylised))

LPIPS measures how much content survived, FID how close the outputs are to the style set; lower is better.
"""

from __future__ import annotations


def artfid(fid: float, lpips_content: float) -> float:
    """Combine FID(style set, outputs) and mean LPIPS(content, output) as in the paper."""
    return (1.0 + float(lpips_content)) * (1.0 + float(fid))
