"""Global RNG state in checkpoints, so a resumed run draws the same random numbers (dropout, noise) as one that
never stopped; and one random stream per DDP rank.

Under DDP every process seeds the same way (`seed_everything` in each rank's copy of the script), so without
`seed_rank` all ranks would draw the same dropout masks and VAE noise for their different images. Each process holds
one GPU: the CUDA state saved is that device's alone, and every rank's state is saved (`RNGState.for_rank` picks
this rank's on resume, whatever the number of GPUs then)."""

from __future__ import annotations

import random

import numpy as np
import torch


def _cuda_ready() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_initialized()


def rank_seed(seed: int, rank: int) -> int:
    """A seed of its own for DDP rank `rank` (< 2**32, for numpy); rank 0 keeps `seed`, so a single process draws
    exactly what it drew before ranks had seeds of their own."""
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1)[0])


def seed_rank(rank: int) -> None:
    """Re-seed torch (CPU and CUDA), numpy and random for `rank` from the run's seed (`torch.initial_seed()`, the
    same on every rank). Call it after the networks are built: their initial weights must stay identical."""
    if rank == 0:
        return
    seed = rank_seed(torch.initial_seed() % 2**63, rank)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # every CUDA device too


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
        if _cuda_ready():  # this process's GPU: under DDP each rank has its own, and the others are not ours
            state["cuda"] = torch.cuda.get_rng_state()
        return state

    def schedule(self, state: dict) -> None:
        self._pending = state

    def for_rank(self, checkpoint: dict, rank: int) -> str | None:
        """Schedule this rank's saved state (`rng_by_rank`; a single-process checkpoint's `rng` is rank 0's). A rank
        the checkpoint has no state for keeps its own seed; returns a note for the log then, else None."""
        by_rank = checkpoint.get("rng_by_rank") or ([checkpoint["rng"]] if "rng" in checkpoint else [])
        if rank < len(by_rank):
            self.schedule(by_rank[rank])
            return None
        if not by_rank:
            return None
        return (
            f"the checkpoint holds the random state of {len(by_rank)} rank(s): rank {rank} goes on from its own "
            "seed (not an exact resume for its dropout and noise)"
        )

    def restore_if_pending(self) -> None:
        if self._pending is None:
            return
        s, self._pending = self._pending, None
        torch.set_rng_state(s["torch"])
        np.random.set_state(("MT19937", s["numpy"].numpy().astype(np.uint32), int(s["numpy_pos"]), 0, 0.0))
        random.setstate((3, tuple(int(v) for v in s["python"].tolist()), None))
        cuda = s.get("cuda")
        if isinstance(cuda, list | tuple):  # written before one device per rank: every device's state
            device = torch.cuda.current_device() if _cuda_ready() else 0
            cuda = cuda[device] if device < len(cuda) else None
        if cuda is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(cuda)  # the current device: this rank's
