"""`python -m underpainting.xray simulate SURFACE HIDDEN --out DIR`: a test case with its ground truth."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch.nn.functional as F

from underpainting.data.xray.io import load_visible, save_grey, save_rgb
from underpainting.data.xray.simulator import XRayMixture, XRaySimulator


def simulate_files(
    surface: str | Path,
    hidden: str | Path,
    out: str | Path,
    size: int | None = None,
    simulator: XRaySimulator | None = None,
) -> tuple[XRayMixture, dict]:
    """Simulate the X-ray of painting `hidden` under painting `surface` (resized so the long side is `size`) and
    write xray.png (16 bit), visible.png, hidden_truth.png and surface_truth.png (16 bit, on the X-ray's scale),
    artefacts.png and simulation.json (the parameters and the scale). Returns the mixture and the summary."""
    sim = simulator or XRaySimulator()
    top, under = load_visible(surface), load_visible(hidden)
    if size:
        h, w = top.shape[-2:]
        s = size / max(h, w)
        top = F.interpolate(top[None], size=(round(h * s), round(w * s)), mode="bicubic", antialias=True)[
            0
        ].clamp(0, 1)
    m = sim(top, under)
    lo, hi = float(m.xray.min()), float(m.xray.max())
    scale = 1.0 / (hi - lo)
    out = Path(out)
    save_grey((m.xray - lo) * scale, out / "xray.png", bits=16)
    save_rgb(m.visible, out / "visible.png")
    save_grey(m.hidden * scale, out / "hidden_truth.png", bits=16)
    save_grey(m.surface * scale, out / "surface_truth.png", bits=16)
    artefacts = sum(m.artefacts.values())
    save_grey(
        (artefacts - artefacts.min()) / (artefacts.max() - artefacts.min()).clamp_min(1e-8),
        out / "artefacts.png",
    )
    summary = {
        "surface": str(surface),
        "hidden": str(hidden),
        "size": list(m.xray.shape[-2:]),
        "xray_png": {
            "offset": lo,
            "scale": scale,
            "note": "png = (xray - offset) * scale; truths: part * scale",
        },
        "simulator": asdict(sim),
        "files": ["xray.png", "visible.png", "hidden_truth.png", "surface_truth.png", "artefacts.png"],
    }
    (out / "simulation.json").write_text(json.dumps(summary, indent=2))
    return m, summary
