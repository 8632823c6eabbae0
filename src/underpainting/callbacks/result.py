"""The picture a run optimises, written when training ends: modules that optimise one image (NST, the doodle) offer
`save_result(run_dir, config)`; this callback calls it with the resolved run config, which `train.py` hands it, so
the result records how it was made and the module never looks for the config itself."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


class SaveResult(Callback):
    """Args:
    config: the resolved run config (plain containers), written beside the result; None: the module's own
        hyperparameters.
    """

    def __init__(self, config: Mapping | None = None) -> None:
        self.config = config

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or not hasattr(pl_module, "save_result"):
            return
        path = pl_module.save_result(trainer.default_root_dir, self.config)
        log.info("final image: %s", path)
