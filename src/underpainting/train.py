"""Training entry point: compose data, model, callbacks, loggers and trainer from the Hydra config and fit."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import lightning.pytorch as pl
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from underpainting.errors import UserError
from underpainting.loggers import summarize_loggers
from underpainting.utils.config_tree import print_config_tree
from underpainting.utils.loggers import configure_wandb_mode
from underpainting.utils.quiet import quiet

log = logging.getLogger(__name__)


class EmbedConfig(pl.Callback):
    """Stores the resolved run config in every checkpoint (plain containers only, so `weights_only=True` loading
    still works) so export and inference can rebuild the networks without the original command line."""

    def __init__(self, cfg: DictConfig) -> None:
        self.config = OmegaConf.to_container(cfg, resolve=True)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["underpainting_config"] = self.config


def _scalars(trainer: pl.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


def _instantiate_group(group: DictConfig | None) -> list:
    return [instantiate(c) for c in (group or {}).values() if isinstance(c, DictConfig) and "_target_" in c]


def run(cfg: DictConfig, extra_callbacks: list[pl.Callback] | None = None) -> dict[str, float]:
    """Fit (and optionally test) the configured model; returns the final callback metrics."""
    quiet()  # known third-party noise, each filter explained in utils/quiet.py
    if cfg.get("print_config", True):
        print_config_tree(cfg, cfg.paths.output_dir)
    configure_wandb_mode()
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    callbacks = [*_instantiate_group(cfg.get("callbacks")), EmbedConfig(cfg), *(extra_callbacks or [])]
    loggers = _instantiate_group(cfg.get("logger"))
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    metrics: dict[str, float] = {}
    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        metrics.update(_scalars(trainer))
    if cfg.get("test", False):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update(
            _scalars(trainer)
        )  # test metrics join, not replace, the fit metrics a sweep may optimise

    if trainer.is_global_zero:
        _report(cfg, trainer, metrics)
    summarize_loggers(loggers, trainer.global_step)  # TensorBoard HParams, W&B best values
    for logger in loggers:
        logger.finalize("success")
    if "wandb" in (cfg.get("logger") or {}):
        import wandb

        wandb.finish()
    return metrics


def _report(cfg: DictConfig, trainer: pl.Trainer, metrics: dict[str, float]) -> None:
    out = Path(cfg.paths.output_dir)
    ckpt = trainer.checkpoint_callback
    lines = [f"run directory: {out}"]
    if ckpt is not None and ckpt.last_model_path:
        lines.append(f"checkpoint:    {ckpt.last_model_path}")
    samples = sorted((out / "samples").glob("*.png")) if (out / "samples").is_dir() else []
    if samples:
        lines.append(f"sample grids:  {out / 'samples'} (latest: {samples[-1].name})")
    for logger in trainer.loggers:
        lines.append(f"{type(logger).__name__:<14} {logger.log_dir or logger.save_dir}")
    shown = {k: round(v, 4) for k, v in sorted(metrics.items()) if not k.startswith("lr/")}
    lines.append(f"final metrics: {shown}")
    log.info("\n".join(lines))


def main(cfg: DictConfig) -> float | None:
    """Hydra entry: run, turn user errors into a one-paragraph message, return the sweep objective."""
    try:
        metrics = run(cfg)
    except (UserError, InstantiationException) as e:
        if isinstance(e, InstantiationException):  # Hydra wraps errors raised in constructors
            if not isinstance(e.__cause__, UserError):
                raise
            e = e.__cause__
        log.error("%s", e)
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # let the sweep record this trial's failure and go on
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    objective = cfg.get("optimized_metric")
    if objective:
        if objective not in metrics:
            raise KeyError(f"optimized_metric {objective!r} was not logged; logged: {sorted(metrics)}")
        return metrics[objective]
    return None
