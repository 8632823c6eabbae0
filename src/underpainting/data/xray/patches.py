"""Per-painting training data for X-ray separation: random patches of one prepared case (Pu et al. 2022 train on
64x64 patches of the painting being separated), and the whole image for validation, sample grids and the result.

With no files given (`xray: null`) the case is simulated from two procedural Van Gogh-like paintings, offline, with
its ground truth, so `python train.py experiment=xray_separation` runs anywhere and logs the true scores.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from underpainting.data.labels import LabelSet
from underpainting.data.xray.case import XRayCase, check_case_size, prepare_case, read_xray
from underpainting.data.xray.io import load_visible, load_xray
from underpainting.data.xray.simulator import XRaySimulator
from underpainting.errors import DataError

log = logging.getLogger(__name__)


def _item(case: XRayCase, ys: slice = slice(None), xs: slice = slice(None)) -> dict[str, torch.Tensor]:
    item = {
        "xray": case.xray[:, ys, xs],
        "visible": case.visible[:, ys, xs],
        "init": case.init[:, ys, xs],
        "luma": case.luma[:, ys, xs],
    }
    if case.truth is not None:
        item["truth"] = case.truth[:, ys, xs]
    return item


class XRayPatches(Dataset):
    """`length` random `size` px patches; patch i is the same for a given seed (reproducible, resumable)."""

    def __init__(self, case: XRayCase, size: int, length: int, seed: int = 0) -> None:
        h, w = case.xray.shape[-2:]
        if min(h, w) < size:
            raise DataError(f"the X-ray ({w}x{h} px) is smaller than `data.patch_size`={size}; lower it")
        self.case, self.size, self.length, self.seed = case, size, length, seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * self.length + i)
        h, w = self.case.xray.shape[-2:]
        y = int(torch.randint(0, h - self.size + 1, (1,), generator=g))
        x = int(torch.randint(0, w - self.size + 1, (1,), generator=g))
        return _item(self.case, slice(y, y + self.size), slice(x, x + self.size))


class XRayDataModule(pl.LightningDataModule):
    """Args:
    xray: the radiograph (8/16-bit PNG/TIFF), or a list/folder of mosaic plates; null: simulate (`simulate`).
    visible: the colour photo of the visible painting.
    truth: optional ground-truth concealed X-ray (simulations): scores are logged when given.
    mosaic: {cols, overlap, equalise} for plates. registration: {method: none|points|auto, kind, points}.
    artefacts: switches and thresholds of `underpainting.data.xray.artefacts.ArtefactRemoval`.
    degree: the polynomial degree of the regression baseline (the network's first guess).
    simulate: {surface_seed, hidden_seed, size, seed, simple, hidden_rotation} of the offline simulated case
        (simple: without the acquisition artefacts; the hidden landscape turned by hidden_rotation degrees).
    patch_size / batch_size / steps_per_epoch: patches per step and steps per epoch.
    """

    def __init__(
        self,
        xray: str | Sequence[str] | None = None,
        visible: str | None = None,
        truth: str | None = None,
        mosaic: Mapping | None = None,
        registration: Mapping | None = None,
        artefacts: Mapping | None = None,
        degree: int = 3,
        simulate: Mapping | None = None,
        labels: LabelSet | None = None,
        patch_size: int = 64,
        batch_size: int = 8,
        steps_per_epoch: int = 100,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.xray_source, self.visible_path, self.truth_path = xray, visible, truth
        self.mosaic, self.registration = dict(mosaic or {}), dict(registration or {})
        self.artefacts, self.degree = dict(artefacts or {}), int(degree)
        self.simulate, self.labels = dict(simulate or {}), labels
        self.patch_size, self.batch_size = int(patch_size), int(batch_size)
        self.steps_per_epoch, self.num_workers, self.seed = int(steps_per_epoch), int(num_workers), int(seed)
        self.case: XRayCase | None = None

    def load(self) -> XRayCase:
        """Read (or simulate) and prepare the case; done once."""
        if self.case is not None:
            return self.case
        if self.xray_source is None:
            xray, visible, truth, names = self._simulated()
        else:
            if not self.visible_path:
                raise DataError(
                    "`data.visible` is not set: give the colour photo of the visible painting beside `data.xray`"
                )
            xray = read_xray(self.xray_source, self.mosaic)
            visible = load_visible(self.visible_path)
            truth = load_xray(self.truth_path) if self.truth_path else None
            src = self.xray_source if isinstance(self.xray_source, str) else f"{len(self.xray_source)} plates"
            names = {"xray": str(src), "visible": str(self.visible_path)}
        check_case_size(xray, names["xray"], self.patch_size)
        log.info(
            "X-ray %dx%d px, photo %dx%d px",
            xray.shape[-1],
            xray.shape[-2],
            visible.shape[-1],
            visible.shape[-2],
        )
        self.case = prepare_case(xray, visible, self.registration, self.artefacts, self.degree, truth, names)
        return self.case

    def _simulated(self):
        from underpainting.data.synthetic import SyntheticLandscapes

        if self.labels is None:
            raise DataError("the simulated X-ray case needs the label set (`data.labels: ${labels}`)")
        s = self.simulate
        scenes = SyntheticLandscapes(self.labels, int(s.get("size", 128)))
        surface = (scenes(int(s.get("surface_seed", 0))).painting + 1) / 2
        hidden = (scenes(int(s.get("hidden_seed", 1))).painting + 1) / 2
        sim = XRaySimulator.simple if s.get("simple", False) else XRaySimulator
        m = sim(seed=int(s.get("seed", 0)), hidden_rotation=int(s.get("hidden_rotation", 0)))(surface, hidden)
        return m.xray, m.visible, m.hidden, {"xray": "simulated", "visible": "simulated"}

    def setup(self, stage: str | None = None) -> None:
        self.load()

    def train_dataloader(self) -> DataLoader:
        ds = XRayPatches(self.load(), self.patch_size, self.steps_per_epoch * self.batch_size, self.seed)
        if self.trainer is not None:
            ds.epoch = self.trainer.current_epoch
        return DataLoader(ds, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader([_item(self.load())], batch_size=1, collate_fn=_stack)

    def predict_dataloader(self) -> DataLoader:
        return self.val_dataloader()


def _stack(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}
