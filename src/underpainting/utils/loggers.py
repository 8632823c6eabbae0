"""Experiment-tracker setup: W&B goes offline by itself when no API key is configured, never prompting."""

from __future__ import annotations

import logging
import netrc
import os

log = logging.getLogger(__name__)


def wandb_key_configured() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def configure_wandb_mode() -> str:
    """Respect an explicit WANDB_MODE; otherwise online with a key, offline without (sync later with `wandb sync`)."""
    if "WANDB_MODE" not in os.environ and not wandb_key_configured():
        os.environ["WANDB_MODE"] = "offline"
        log.info(
            "W&B: no API key configured, logging offline; upload later with `wandb sync <run>/wandb/offline-run-*`"
        )
    os.environ.setdefault("WANDB_SILENT", "true")
    return os.environ.get("WANDB_MODE", "online")
