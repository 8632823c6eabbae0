"""DataLoader worker setup."""

from __future__ import annotations

import os
import signal

from lightning.fabric.utilities.seed import pl_worker_init_function


def worker_init(worker_id: int) -> None:
    """Workers ignore SIGTERM: a cluster signals the whole process group before preemption, and a worker that dies
    first turns the main process's orderly stop (SafeStop: checkpoint, then exit) into a DataLoader traceback. The
    main process still ends them when it stops. Seeds as Lightning's `seed_everything(workers=True)` would."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if int(os.environ.get("PL_SEED_WORKERS", 0)):
        pl_worker_init_function(worker_id)
