"""Training entry point: compose data, model, callbacks, loggers and trainer from the Hydra config and fit."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from underpainting.callbacks.result import SaveResult
from underpainting.checkpoints import check_run_checkpoint, remove_stale_temp_files
from underpainting.config.checks import build, check_types, check_values
from underpainting.config.sizes import check_training_size
from underpainting.config.tree import print_config_tree
from underpainting.data.images import DEFAULT_MAX_PIXELS, pixel_limit
from underpainting.errors import ConfigError, exit_on_user_error
from underpainting.runtime.distributed import leave_process_group_at_exit
from underpainting.runtime.precision import warn_if_emulated
from underpainting.runtime.quiet import quiet
from underpainting.runtime.run_lock import hold_run_folder
from underpainting.tracking.loggers import continue_history, summarise_loggers
from underpainting.tracking.wandb_mode import configure_wandb_mode, finish_wandb_run, wandb_start_error

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


def _instantiate_group(group: DictConfig | None, name: str) -> list:
    return [
        build(c, f"{name}.{k}")
        for k, c in (group or {}).items()
        if isinstance(c, DictConfig) and "_target_" in c
    ]


def _checked_ckpt_path(cfg: DictConfig, model: pl.LightningModule) -> str | None:
    """`ckpt_path` after the checks infer.py makes (Lightning's own names - last, hpc, best - pass through), and the
    temporary files of saves killed mid-write removed from its folder and this run's checkpoint folder."""
    path = cfg.get("ckpt_path")
    own = (cfg.get("callbacks") or {}).get("model_checkpoint") or {}
    for folder in {own.get("dirpath"), str(Path(path).parent) if path else None} - {None}:
        remove_stale_temp_files(folder)
    if path and path not in ("last", "hpc", "best", "registry"):
        check_run_checkpoint(path, model, OmegaConf.to_container(cfg.model, resolve=True))
    if not cfg.get("train", True) and cfg.get("test", False) and not path:
        raise ConfigError(
            "train=false test=true evaluates a checkpoint: add ckpt_path=<run>/checkpoints/<file>.ckpt"
        )
    return path


def _test_path(trainer: pl.Trainer, trained: bool, ckpt_path: str | None) -> str | None:
    """What `test=true` evaluates: the given checkpoint when not training; after training the best checkpoint by a
    monitored metric (callbacks=[default,metrics]: val/fid), else the weights as training left them."""
    if not trained:
        return ckpt_path
    best = [cb.best_model_path for cb in trainer.checkpoint_callbacks if cb.monitor and cb.best_model_path]
    return best[0] if best else None


def run(cfg: DictConfig, extra_callbacks: list[pl.Callback] | None = None) -> dict[str, float]:
    """Fit (and optionally test) the configured model; returns the final callback metrics. Settings are checked
    first; the run folder is this run's alone while it runs; images over `max_pixels` are refused."""
    quiet()  # known third-party noise, each filter explained in runtime/quiet.py
    check_types(cfg)
    check_values(cfg)
    limit = int(cfg.get("max_pixels", DEFAULT_MAX_PIXELS) or 0)
    with hold_run_folder(cfg.paths.output_dir), pixel_limit(limit, "max_pixels"):
        return _fit(cfg, extra_callbacks)


def _fit(cfg: DictConfig, extra_callbacks: list[pl.Callback] | None) -> dict[str, float]:
    if cfg.get("print_config", True):
        print_config_tree(cfg, cfg.paths.output_dir)
    configure_wandb_mode(preflight="wandb" in (cfg.get("logger") or {}))
    leave_process_group_at_exit()  # DDP ranks: no abort at exit
    warn_if_emulated(cfg.trainer.get("precision"), cfg.trainer.get("accelerator", "auto"))
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    datamodule = build(cfg.data, "data")
    model = build(cfg.model, "model")
    ckpt_path = _checked_ckpt_path(cfg, model)  # the file given is named first when it does not fit
    check_training_size(model, cfg)
    continue_history(cfg, ckpt_path)
    embed = EmbedConfig(cfg)
    callbacks = [
        *_instantiate_group(cfg.get("callbacks"), "callbacks"),
        embed,
        SaveResult(embed.config),  # NST / doodle: the final image with this config beside it
        *(extra_callbacks or []),
    ]
    loggers = _instantiate_group(cfg.get("logger"), "logger")
    try:
        metrics = _fit_logged(cfg, model, datamodule, ckpt_path, callbacks, loggers)
    except BaseException:
        finish_wandb_run(failed=True)
        raise
    finish_wandb_run()
    return metrics


def _fit_logged(cfg: DictConfig, model, datamodule, ckpt_path, callbacks, loggers) -> dict[str, float]:
    trainer: pl.Trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        try:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        except Exception as e:  # wandb.init: auth, network, quota
            if isinstance(logger, WandbLogger):
                raise wandb_start_error(e) from None
            raise

    metrics: dict[str, float] = {}
    try:
        if cfg.get("train", True):
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
            metrics.update(_scalars(trainer))
        if cfg.get("test", False):
            path = _test_path(trainer, cfg.get("train", True), ckpt_path)
            trainer.test(model, datamodule=datamodule, ckpt_path=path, weights_only=True)
            metrics.update(
                _scalars(trainer)
            )  # test metrics join, not replace, the fit metrics a sweep may optimise
    except SIGTERMException:  # SafeStop wrote the checkpoint and said where; end like a finished run
        metrics.update(_scalars(trainer))

    if trainer.is_global_zero:
        _report(cfg, trainer, metrics)
    summarise_loggers(loggers, trainer.global_step)  # TensorBoard HParams, W&B best values
    for logger in loggers:
        logger.finalize("success")
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


@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    """Hydra entry: run and return the sweep objective (a user error: one paragraph, exit 1; see errors.py)."""
    metrics = run(cfg)
    objective = cfg.get("optimized_metric")
    if objective:
        if objective not in metrics:
            raise KeyError(f"optimized_metric {objective!r} was not logged; logged: {sorted(metrics)}")
        return metrics[objective]
    return None
