"""Experiment-tracker setup: W&B goes offline by itself when no API key is configured, never prompting, and an
online W&B that cannot reach its server fails in seconds with the way out, not after a 90 s timeout and a traceback."""

from __future__ import annotations

import logging
import netrc
import os
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlparse

from underpainting.errors import UserError

log = logging.getLogger(__name__)
WANDB_HINT = (
    "run offline with WANDB_MODE=offline (upload later with `wandb sync`) or log with logger=tensorboard"
)


def wandb_key_configured() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _reach(host: str, port: int, timeout: float) -> None:
    socket.create_connection((host, port), timeout=timeout).close()


def check_wandb_reachable(timeout: float = 5.0) -> None:
    """Online W&B: its server must answer a TCP connection within `timeout` seconds (name lookup included)."""
    if os.environ.get("WANDB_MODE", "online") not in ("online", "run"):
        return
    url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(_reach, parsed.hostname or url, port, timeout).result(timeout=timeout + 1)
    except (OSError, FutureTimeout) as e:
        why = getattr(e, "strerror", None) or type(e).__name__
        raise UserError(
            f"W&B is online (an API key is configured, WANDB_MODE is not offline) but its server {url} cannot be "
            f"reached ({why}); {WANDB_HINT}."
        ) from None
    finally:
        pool.shutdown(wait=False)


def wandb_start_error(e: BaseException) -> UserError:
    return UserError(
        f"W&B could not start the run ({type(e).__name__}: {str(e).splitlines()[0][:300]}); {WANDB_HINT}."
    )


def configure_wandb_mode(preflight: bool = False) -> str:
    """Respect an explicit WANDB_MODE; otherwise online with a key, offline without (sync later with `wandb sync`).
    With `preflight` (the W&B logger is in use), check that an online server can be reached."""
    if "WANDB_MODE" not in os.environ and not wandb_key_configured():
        os.environ["WANDB_MODE"] = "offline"
        log.info(
            "W&B: no API key configured, logging offline; upload later with `wandb sync <run>/wandb/offline-run-*`"
        )
    os.environ.setdefault("WANDB_SILENT", "true")
    if preflight:
        check_wandb_reachable()
    return os.environ.get("WANDB_MODE", "online")


def finish_wandb_run(failed: bool = False) -> None:
    """End the process's W&B run, if one is active (exit code 1 when the run failed). Lightning's WandbLogger
    reuses an active `wandb.run`: left open by a failed run, the next run in the same process (a trial of a Hydra
    multirun, a test) would log into it and leave its own folder without W&B files."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)
