"""At the end of an X-ray separation run: separate the whole painting and write the parts (`xray.outputs`)."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image

from underpainting.xray.outputs import write_outputs

log = logging.getLogger(__name__)


class XRayOutputs(pl.Callback):
    """Writes hidden.png, surface.png, residual.png, contact_sheet.png, separation.json into `dirpath` and logs the
    contact sheet to every image-capable logger."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    @rank_zero_only
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        case = trainer.datamodule.load()
        parts = pl_module.separate(case.xray, case.visible, case.init)
        losses = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
        summary = write_outputs(case, parts, self.dirpath, {"final_losses": losses})
        sheet = Image.open(self.dirpath / "contact_sheet.png").convert("RGB")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="xray/contact_sheet", images=[sheet])
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(
                    "xray/contact_sheet", np.asarray(sheet), trainer.global_step, dataformats="HWC"
                )
        scores = summary.get("scores_vs_truth")
        log.info(
            "X-ray separation written to %s%s", self.dirpath, f"; r vs truth: {scores}" if scores else ""
        )
