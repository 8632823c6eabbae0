"""Fixed tensors a loss compares against (Gram and content targets, style patches, guides), held so that they move
with their module.

A plain dict of tensors is invisible to `nn.Module.to`: targets computed in Lightning's `setup` - which runs before
the module is moved to the GPU - stayed on the CPU, and the first step failed with "Expected all tensors to be on the
same device". `Targets` keeps them as non-persistent buffers: moved with the module, left out of state dicts
(they are recomputed from the inputs)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import nn


class Targets(nn.Module):
    """A mapping name -> tensor that follows its parent module's device and dtype moves; `set` replaces the lot.
    Names are layer or image names (`relu3_1`, `content`): no dots."""

    def __init__(self, tensors: Mapping[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.set(tensors or {})

    def set(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self._buffers.clear()
        for name, tensor in tensors.items():
            self.register_buffer(name, tensor, persistent=False)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._buffers[name]

    def __setitem__(self, name: str, tensor: torch.Tensor) -> None:
        self.register_buffer(name, tensor, persistent=False)

    def __contains__(self, name: object) -> bool:
        return name in self._buffers

    def __iter__(self) -> Iterator[str]:
        return iter(self._buffers)

    def __len__(self) -> int:
        return len(self._buffers)

    def keys(self):
        return self._buffers.keys()

    def values(self):
        return self._buffers.values()

    def items(self):
        return self._buffers.items()
