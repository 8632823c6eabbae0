"""The files a separation writes: the parts for viewing and at full precision, a contact sheet, and a JSON summary
(scores against the truth when it is known)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image

from underpainting.data.sheets import contact_sheet
from underpainting.data.xray.case import XRayCase
from underpainting.data.xray.io import contrast_normalise, save_grey, save_rgb
from underpainting.xray.metrics import pearson, score


def symmetric_view(x: torch.Tensor) -> torch.Tensor:
    """A signed image (0 = nothing) shown with 0 at mid-grey, stretched to its 99.5 % absolute quantile."""
    flat = x.flatten().abs().float()
    s = torch.quantile(flat[:: max(1, flat.numel() // 1_000_000)], 0.995).clamp_min(1e-8)
    return (x / s / 2 + 0.5).clamp(0, 1)


def sheet(case: XRayCase, parts: dict[str, torch.Tensor], max_side: int = 384) -> Image.Image:
    """X-ray | visible | surface part | hidden part (| baseline | truth), labelled."""
    grey = lambda t: contrast_normalise(t).expand(3, -1, -1) * 2 - 1  # noqa: E731
    row = {
        "X-ray": grey(case.raw),
        "visible": case.visible * 2 - 1,
        "surface part": grey(parts["surface"]),
        "hidden part": grey(parts["hidden"]),
        "baseline (polynomial)": grey(case.baseline_hidden),
    }
    if case.truth is not None:
        row["ground truth"] = grey(case.truth)
    return contact_sheet(
        [row], title=f"{case.names.get('xray', '')} + {case.names.get('visible', '')}", max_side=max_side
    )


def write_outputs(
    case: XRayCase, parts: dict[str, torch.Tensor], out_dir: str | Path, extra: dict | None = None
) -> dict:
    """Write hidden.png, surface.png, residual.png (contrast-normalised for viewing), hidden_16bit.png (the hidden
    part min-max scaled, 16 bit), baseline_hidden.png, contact_sheet.png and separation.json; returns the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hidden, surface = parts["hidden"], parts["surface"]
    residual = case.raw - surface - hidden  # the artefacts taken out (and nothing else)
    save_grey(contrast_normalise(hidden), out / "hidden.png")
    lo, hi = hidden.min(), hidden.max()
    save_grey((hidden - lo) / (hi - lo).clamp_min(1e-8), out / "hidden_16bit.png", bits=16)
    save_grey(contrast_normalise(surface), out / "surface.png")
    save_grey(symmetric_view(residual), out / "residual.png")
    save_grey(contrast_normalise(case.baseline_hidden), out / "baseline_hidden.png")
    save_rgb(case.visible, out / "visible_registered.png")
    sheet(case, parts).save(out / "contact_sheet.png")
    summary = {
        "inputs": case.names,
        "size": list(case.xray.shape[-2:]),
        "transform_xray_to_visible": case.transform.tolist() if case.transform is not None else None,
        "artefacts_removed": {k: round(float(v.std()), 5) for k, v in case.removed.items()},
        # Without a ground truth: the surface part should follow the photo, the hidden part much less.
        "r_with_visible_luminance": {
            "surface": pearson(surface, case.luma),
            "hidden": pearson(hidden, case.luma),
        },
        "files": sorted(p.name for p in out.glob("*.png")),
        **(extra or {}),
    }
    if case.truth is not None:
        summary["scores_vs_truth"] = {
            "mixture": score(case.raw, case.truth),
            "baseline": score(case.baseline_hidden, case.truth),
            "separation": score(hidden, case.truth),
        }
    (out / "separation.json").write_text(json.dumps(summary, indent=2))
    return summary
