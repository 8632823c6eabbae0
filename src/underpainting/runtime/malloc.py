"""A long-lived server's memory: glibc gives each thread that allocates its own malloc arena, and a job's freed
buffers stay in the arena of the worker thread that ran it, held rather than returned to the system. The app runs
one job at a time, but on any of Gradio's pool threads, so its RSS crept up job after job (benchmarks/app_soak.py;
docs/app.md). Not a leak: the memory is reused. `release_free_memory` hands it back after each job."""

from __future__ import annotations

import ctypes
import ctypes.util


def release_free_memory() -> bool:
    """glibc's `malloc_trim(0)`: free pages of every malloc arena go back to the system (a few ms). Returns whether
    anything was released; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        return bool(ctypes.CDLL(name).malloc_trim(0)) if name else False
    except (OSError, AttributeError):  # musl, macOS: no malloc_trim
        return False
