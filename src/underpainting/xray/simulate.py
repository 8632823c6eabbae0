"""`python -m underpainting.xray simulate SURFACE HIDDEN --out DIR`: a test case with its ground truth."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch.nn.functional as F

from underpainting.data.images import DEFAULT_MAX_PIXELS, current_pixel_limit, pixel_limit
from underpainting.data.xray.io import load_visible, save_grey, save_rgb
from underpainting.data.xray.simulator import XRayMixture, XRaySimulator
from underpainting.errors import DataError
from underpainting.runtime.destinations import writable_folder


def simulate_files(
    surface: str | Path,
    hidden: str | Path,
    out: str | Path,
    size: int | None = None,
    simulator: XRaySimulator | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[XRayMixture, dict]:
    """Simulate the X-ray of painting `hidden` under painting `surface` (resized so the long side is `size`) and
    write xray.png (16 bit), visible.png, hidden_truth.png and surface_truth.png (16 bit, on the X-ray's scale),
    artefacts.png and simulation.json (the parameters and the scale). Returns the mixture and the summary.
    Inputs and the simulated size are held to `max_pixels` (`--max-pixels`)."""
    sim = simulator or XRaySimulator()
    out = writable_folder(out, "--out")
    if size is not None and size < 1:
        raise DataError(
            f"--size {size}: the long side must be at least 1 px (or leave it out: the surface's size)"
        )
    with pixel_limit(max_pixels, "--max-pixels"):
        top, under = load_visible(surface), load_visible(hidden)
        if size:
            h, w = top.shape[-2:]
            s = size / max(h, w)
            new = (max(1, round(h * s)), max(1, round(w * s)))
            current_pixel_limit().check(f"--size {size}", new[::-1])
            top = F.interpolate(top[None], size=new, mode="bicubic", antialias=True)[0].clamp(0, 1)
    m = sim(top, under)
    lo, hi = float(m.xray.min()), float(m.xray.max())
    if hi - lo < 1e-6:
        raise DataError(
            f"{surface} over {hidden} gives a blank X-ray (every pixel {lo:.4g}): both paintings are flat; "
            "simulate with paintings that have some contrast"
        )
    scale = 1.0 / (hi - lo)
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
