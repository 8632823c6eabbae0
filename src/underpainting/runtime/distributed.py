"""Leaving the process group cleanly when a process exits."""

from __future__ import annotations

import atexit
import logging
from datetime import timedelta

import torch.distributed as dist

log = logging.getLogger(__name__)
_registered = False


def _leave() -> None:
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == "gloo":  # every rank is done with collectives before any tears down
            dist.monitored_barrier(timeout=timedelta(seconds=60))
    except Exception as e:  # noqa: BLE001 - another rank died first: still tear down our side
        log.debug("no exit barrier: %s", e)
    dist.destroy_process_group()


def leave_process_group_at_exit() -> None:
    """Destroy the default process group at interpreter exit, on every rank (registered once per process).

    Lightning does this for NCCL only. A gloo group left to interpreter shutdown still has its worker threads when
    the C++ objects are destroyed, and std::terminate aborts the process ("terminate called without an active
    exception", SIGABRT on rank 1 after fit) - at random, depending on which rank exits first."""
    global _registered
    if not _registered:
        atexit.register(_leave)
        _registered = True


def of_every_rank(obj: object) -> list | None:
    """Every DDP rank's `obj` (picklable), in rank order; None in a single process. A collective: every rank calls
    it at the same point (checkpoint hooks: Lightning builds the checkpoint on every rank, rank 0 writes it)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
