"""One painting's separation problem, prepared: the X-ray read (or stitched), the photo registered onto it, the
acquisition artefacts removed, and the regression baseline's surface estimate (the network's first guess)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from underpainting.data.colour import luminance
from underpainting.data.xray.artefacts import ArtefactRemoval
from underpainting.data.xray.baseline import regression_baseline
from underpainting.data.xray.io import load_mosaic, load_xray
from underpainting.data.xray.registration import register_visible
from underpainting.errors import DataError

log = logging.getLogger(__name__)
MIN_SIDE = 16  # the artefact filters' reflect-padded windows need this much image (measured: 12 px fails)


@dataclass
class XRayCase:
    """Tensors in [0, 1] on the X-ray's grid: xray (1, H, W) after artefact removal, visible (3, H, W)."""

    xray: torch.Tensor
    visible: torch.Tensor
    init: torch.Tensor  # the regression baseline's surface part
    raw: torch.Tensor  # the X-ray as read
    removed: dict[str, torch.Tensor] = field(default_factory=dict)
    truth: torch.Tensor | None = None  # the concealed X-ray, when known (simulations)
    transform: torch.Tensor | None = None  # 2x3, X-ray px -> photo px
    names: dict[str, str] = field(default_factory=dict)

    @property
    def baseline_hidden(self) -> torch.Tensor:
        return self.xray - self.init

    @property
    def luma(self) -> torch.Tensor:
        return luminance(self.visible)


def read_xray(source: str | Path | Sequence[str | Path], mosaic: Mapping | None = None) -> torch.Tensor:
    """One X-ray file, or the plates of a mosaic (a list or a folder) stitched by `mosaic` = {cols, overlap}."""
    if isinstance(source, (str, Path)) and not Path(source).expanduser().is_dir():
        return load_xray(source)
    if isinstance(source, (str, Path)):
        from underpainting.data.images import list_images

        plates = list_images(Path(source).expanduser())
    else:
        plates = [Path(p) for p in source]
    if not mosaic or not mosaic.get("cols"):
        raise DataError(
            f"{len(plates)} X-ray plates given: say how they tile with `data.mosaic.cols=<plates per row>` "
            "(and `data.mosaic.overlap=<px>` if neighbours overlap); plates are read row by row, sorted by name"
        )
    return load_mosaic(
        plates, int(mosaic["cols"]), int(mosaic.get("overlap", 0)), bool(mosaic.get("equalise", True))
    )


def check_case_size(xray: torch.Tensor, source: str, patch_size: int = 0) -> None:
    """Refuse, before any work, an X-ray too small for the artefact filters or for one training patch."""
    h, w = xray.shape[-2:]
    need = max(MIN_SIDE, int(patch_size))
    if min(h, w) < need:
        why = (
            f"`data.patch_size`={patch_size}"
            if patch_size >= MIN_SIDE
            else f"{MIN_SIDE} px for the artefact filters"
        )
        raise DataError(
            f"{source}: the X-ray is {w}x{h} px, too small: separation needs at least {need} px a side ({why}); "
            "use a larger scan" + (" or lower `data.patch_size`" if patch_size >= MIN_SIDE else "")
        )


def prepare_case(
    xray: torch.Tensor,
    visible: torch.Tensor,
    registration: Mapping | None = None,
    artefacts: ArtefactRemoval | Mapping | None = None,
    degree: int = 3,
    truth: torch.Tensor | None = None,
    names: Mapping[str, str] | None = None,
) -> XRayCase:
    """Register, clean and fit the baseline (see the module docstring)."""
    registration = dict(registration or {})
    names = dict(names or {})
    check_case_size(xray, names.get("xray", "the X-ray"))
    vis, matrix = register_visible(
        visible,
        tuple(xray.shape[-2:]),
        method=registration.get("method", "none"),
        kind=registration.get("kind", "similarity"),
        points=registration.get("points"),
        xray=xray,
        source=names.get("visible", "the visible photo"),
    )
    if truth is not None and truth.shape[-2:] != xray.shape[-2:]:
        raise DataError(
            f"the ground truth is {tuple(truth.shape[-2:])} px but the X-ray {tuple(xray.shape[-2:])}"
        )
    if artefacts is None or isinstance(artefacts, Mapping):
        artefacts = ArtefactRemoval(**dict(artefacts or {}))
    clean, removed = artefacts(xray, lambda x: regression_baseline(x, vis, degree)[0])
    init, _ = regression_baseline(clean, vis, degree)
    return XRayCase(clean, vis, init, xray, removed, truth, matrix, names)
