"""Errors a user can fix, and `exit_on_user_error`: the one way an entry point ends on one (`error: <message>` on
stderr and exit status 1, never a traceback)."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode

P = ParamSpec("P")
R = TypeVar("R")


class UserError(RuntimeError):
    """Base class: the message names the file or setting at fault and how to fix it."""


class DataError(UserError):
    """A problem with the user's data files or dataset folders."""


class WeightsError(UserError):
    """Pretrained weights that are missing, unreadable, or do not match the architecture."""


class TrainingDiverged(UserError):
    """A loss went non-finite (or past its bound): the run stops without checkpointing the diverged state."""


class CheckpointWriteError(UserError):
    """A checkpoint could not be written (disk full, permissions); the previous one is intact."""


class ConfigError(UserError):
    """A config key with a wrong type, or one the configured class does not take."""


def user_error(exc: BaseException) -> UserError | None:
    """The UserError behind `exc`: itself, or the one Hydra wrapped while instantiating a `_target_`; else None."""
    while isinstance(exc, InstantiationException) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc if isinstance(exc, UserError) else None


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def exit_on_user_error(entry: Callable[P, R]) -> Callable[P, R]:
    """Wrap an entry point (`main`): a user error ends it with `error: <message>` on stderr, the message in the log
    (the run's log file under Hydra) and exit status 1. Other exceptions, and argparse's exit 2 for a bad flag,
    pass through. In a Hydra multirun the error is logged and re-raised instead, so the sweep records the trial
    as failed and goes on with the next."""

    @functools.wraps(entry)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return entry(*args, **kwargs)
        except Exception as exc:
            err = user_error(exc)
            if err is None:
                raise
            log = logging.getLogger(entry.__module__)
            if log.hasHandlers():  # else Python's last-resort handler would print the message a second time
                log.error("%s", err)
            if _in_multirun():
                raise
            print(f"error: {err}", file=sys.stderr)
            sys.exit(1)

    return run
