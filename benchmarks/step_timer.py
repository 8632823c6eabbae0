"""Per-iteration wall time of a Lightning training run, synchronising CUDA so GPU work is counted; and the peak
allocated tensor memory of one extra step (`memory_step`, not timed: the CPU's allocation tracing costs time)."""

from __future__ import annotations

import time

import lightning.pytorch as pl
import torch

from benchmarks.memory import PeakAllocated, state_bytes


class StepTimer(pl.Callback):
    def __init__(self, memory_step: int | None = None) -> None:
        self.times: list[float] = []
        self.memory_step = memory_step
        self.peak_bytes: int | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.memory_step:
            self.peak_bytes = state_bytes([pl_module], trainer.optimizers)
            self._peak = PeakAllocated(pl_module.device).__enter__()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if batch_idx == self.memory_step:
            self._peak.__exit__(None, None, None)
            self.peak_bytes += self._peak.peak
            return
        self.times.append(time.perf_counter() - self.start)
