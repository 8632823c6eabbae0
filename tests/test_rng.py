"""Random state across resumes and ranks (`runtime/rng.py`): the CUDA state of this process's device alone, so a run
resumes on another number of GPUs; and a seed per DDP rank. No GPU here: `torch.cuda` is a fake with N devices."""

from __future__ import annotations

import pytest
import torch

from underpainting.runtime.rng import RNGState, rank_seed, seed_rank


class FakeCuda:
    """The RNG part of `torch.cuda` on a machine with `n` GPUs, this process on `current`."""

    def __init__(self, n: int, current: int = 0) -> None:
        self.states = [torch.full((8,), 10 * i, dtype=torch.uint8) for i in range(n)]
        self.current = current

    def _index(self, device) -> int:
        index = self.current if device in ("cuda", None) else torch.device(device, 0).index
        index = device if isinstance(device, int) else index
        if index >= len(self.states):
            raise RuntimeError(
                f"CUDA error: invalid device ordinal {index} (this machine has {len(self.states)})"
            )
        return index

    def get_rng_state(self, device="cuda") -> torch.Tensor:
        return self.states[self._index(device)].clone()

    def set_rng_state(self, state, device="cuda") -> None:
        self.states[self._index(device)] = state.clone()

    def get_rng_state_all(self) -> list[torch.Tensor]:
        return [s.clone() for s in self.states]

    def set_rng_state_all(self, states) -> None:
        for i, s in enumerate(states):
            self.set_rng_state(s, i)

    def install(self, monkeypatch) -> FakeCuda:
        for name in ("get_rng_state", "set_rng_state", "get_rng_state_all", "set_rng_state_all"):
            monkeypatch.setattr(torch.cuda, name, getattr(self, name))
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: self.current)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: len(self.states))
        return self


def test_cuda_state_is_this_devices_and_resumes_on_fewer_gpus(monkeypatch):
    """Saved by the rank on cuda:1 of two GPUs, resumed on a one-GPU machine: the state goes to cuda:0 (it raised
    when every device's state was saved and restored), and only this process's device was read or written."""
    saving = FakeCuda(2, current=1).install(monkeypatch)
    saving.states[1] = torch.arange(8, dtype=torch.uint8)
    state = RNGState.capture()
    assert torch.equal(state["cuda"], saving.states[1]), "this rank's device, not every device"

    resuming = FakeCuda(1, current=0).install(monkeypatch)
    rng = RNGState()
    assert rng.for_rank({"rng": state}, rank=0) is None
    rng.restore_if_pending()
    assert torch.equal(resuming.states[0], torch.arange(8, dtype=torch.uint8))


def test_old_checkpoints_with_every_devices_state_resume_on_the_current_device(monkeypatch):
    fake = FakeCuda(1, current=0).install(monkeypatch)
    old = {
        **RNGState.capture(),
        "cuda": [torch.full((8,), 7, dtype=torch.uint8), torch.zeros(8, dtype=torch.uint8)],
    }
    rng = RNGState()
    rng.schedule(old)
    rng.restore_if_pending()
    assert torch.equal(fake.states[0], old["cuda"][0])


def test_each_rank_resumes_its_own_state_and_a_new_rank_keeps_its_seed():
    states = [{"rank": 0}, {"rank": 1}]
    rng = RNGState()
    assert rng.for_rank({"rng": states[0], "rng_by_rank": states}, rank=1) is None
    assert rng._pending == {"rank": 1}
    rng = RNGState()
    note = rng.for_rank({"rng": states[0]}, rank=1)  # a single-process checkpoint resumed on two ranks
    assert rng._pending is None and "rank 1 goes on from its own seed" in note
    assert rng.for_rank({"rng": states[0]}, rank=0) is None and rng._pending == {"rank": 0}


def test_rank_seeds_differ_and_rank_zero_keeps_the_runs():
    assert rank_seed(7, 0) == 7
    assert len({rank_seed(7, r) for r in range(8)}) == 8
    assert all(0 <= rank_seed(2**40, r) < 2**32 for r in range(1, 4))
    torch.manual_seed(3)
    seed_rank(0)
    zero = torch.rand(3)
    torch.manual_seed(3)
    seed_rank(1)
    one = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(zero, torch.rand(3)) and not torch.equal(zero, one)


@pytest.fixture(autouse=True)
def _keep_the_global_rng():
    with torch.random.fork_rng(devices=[]):
        yield
