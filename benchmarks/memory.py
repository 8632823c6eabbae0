"""Peak allocated tensor memory of a block of work, not process RSS (which hides what bf16 activations save).

CUDA: the caching allocator's own counters. CPU: torch's profiler records every allocation and free with its size;
their running sum is the memory held by tensors, whose maximum over the block is its peak above the start.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.profiler import ProfilerActivity, profile


def state_bytes(modules: Iterable[torch.nn.Module], optimizers: Iterable[torch.optim.Optimizer] = ()) -> int:
    """What a training step starts with: parameters, buffers, gradients and optimizer state (each storage once)."""
    seen: dict[int, int] = {}

    def add(t: torch.Tensor | None) -> None:
        if torch.is_tensor(t) and t.device.type != "meta":
            s = t.untyped_storage()
            seen[s.data_ptr()] = s.nbytes()

    for m in modules:
        for t in [*m.parameters(), *m.buffers()]:
            add(t)
            add(t.grad)
    for opt in optimizers:
        for state in opt.state.values():
            for v in state.values():
                add(v)
    return sum(seen.values())


class PeakAllocated:
    """`with PeakAllocated(device) as p: ...` then `p.peak`: the most bytes held by tensors allocated inside the
    block at any moment (allocations before it not counted)."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.peak = 0

    def __enter__(self) -> PeakAllocated:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.start = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        else:
            self._prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
            self._prof.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.start
            return
        self._prof.__exit__(*exc)
        events = [
            e
            for e in self._prof.profiler.kineto_results.events()
            if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
        ]
        held = peak = 0
        for e in sorted(events, key=lambda e: e.start_ns()):
            held += e.nbytes()
            peak = max(peak, held)
        self.peak = peak
