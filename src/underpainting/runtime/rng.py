"""Global RNG state in checkpoints, so a resumed run draws the same random numbers (dropout, noise) as one that
never stopped."""

from __future__ import annotations

import random

import numpy as np
import torch


class RNGState:
    """Captured at save; restored at the first training step after a resume (not at load time, because Lightning
    consumes random numbers between loading a checkpoint and the first batch)."""

    def __init__(self) -> None:
        self._pending: dict | None = None

    @staticmethod
    def capture() -> dict:
        state = {
            "torch": torch.get_rng_state(),
            "numpy": torch.from_numpy(np.array(np.random.get_state()[1], dtype=np.int64)),
            "numpy_pos": np.random.get_state()[2],
            "python": torch.tensor(list(random.getstate()[1]), dtype=torch.int64),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def schedule(self, state: dict) -> None:
        self._pending = state

    def restore_if_pending(self) -> None:
        if self._pending is None:
            return
        s, self._pending = self._pending, None
        torch.set_rng_state(s["torch"])
        np.random.set_state(("MT19937", s["numpy"].numpy().astype(np.uint32), int(s["numpy_pos"]), 0, 0.0))
        random.setstate((3, tuple(int(v) for v in s["python"].tolist()), None))
        if "cuda" in s and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(s["cuda"])
