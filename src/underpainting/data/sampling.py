"""Deterministic, shardable, resumable sampling.

Every draw is a pair (index, draw_seed) fixed by (seed, epoch, position): the dataset derives all of its randomness
(unaligned partner, crop, flip) from draw_seed, so results do not depend on worker count or process timing, DDP
ranks see disjoint shards, and a run resumed mid-epoch sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from underpainting.runtime.workers import worker_init


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class DrawSampler(Sampler[tuple[int, int]]):
    """`pad=True` (training): every rank gets the same number of draws - DDP steps in lockstep - by wrapping around
    the epoch's order. `pad=False` (validation, test): the ranks' shards are disjoint and together hold every item
    once (rank r takes items r, r + world, ...), so no image counts twice in a metric; Lightning's epoch-end reductions
    weight each rank by its batch sizes. Only when there are fewer items than ranks are some repeated: a rank without
    a batch would skip validation and leave the others waiting in its collectives."""

    def __init__(self, num_items: int, shuffle: bool = True, seed: int = 0, pad: bool = True) -> None:
        self.num_items, self.shuffle, self.seed, self.pad = num_items, shuffle, seed, pad
        self.epoch = 0
        self._skip: tuple[int, int] | None = None  # (epoch, draws to skip)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, skip: int) -> None:
        self.epoch, self._skip = epoch, (epoch, skip)

    def _total(self, world: int) -> int:
        """Draws over all ranks: padded to a multiple of the world size, or to one per rank at least."""
        return math.ceil(self.num_items / world) * world if self.pad else max(self.num_items, world)

    def __len__(self) -> int:
        rank, world = _world()
        return len(range(rank, self._total(world), world))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rank, world = _world()
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.num_items, generator=g) if self.shuffle else torch.arange(self.num_items)
        draws = torch.randint(0, 2**62, (self.num_items,), generator=g)
        total = self._total(world)
        order, draws = (
            order.repeat(math.ceil(total / self.num_items))[:total],
            draws.repeat(math.ceil(total / self.num_items))[:total],
        )
        order, draws = order[rank::world], draws[rank::world]
        start = 0
        if self._skip is not None:
            skip_epoch, skip = self._skip
            start = skip if skip_epoch == self.epoch else 0
            self._skip = None
        yield from zip(order[start:].tolist(), draws[start:].tolist(), strict=True)


class ResumableDataLoader(DataLoader):
    """A DataLoader over a DrawSampler whose position Lightning saves in checkpoints (the `_Stateful` protocol).

    `batches_done` reports how many batches of the current epoch the training loop has finished; it is read at
    save time rather than counted here, because Lightning prefetches batches ahead of the one being trained.
    """

    def __init__(
        self, dataset: Dataset, sampler: DrawSampler, batches_done: Callable[[], int], **kwargs
    ) -> None:
        super().__init__(dataset, sampler=sampler, **kwargs)
        self.batches_done = batches_done

    def state_dict(self) -> dict:
        return {"epoch": self.sampler.epoch, "batches": int(self.batches_done())}

    def load_state_dict(self, state: dict) -> None:
        if state["batches"] >= len(self):
            # Saved after the epoch's last batch: the next draws are the next epoch's. (With workers the iterator,
            # and so the sampler's order, is made before Lightning calls set_epoch for that epoch.)
            self.sampler.resume(state["epoch"] + 1, 0)
        else:
            self.sampler.resume(state["epoch"], state["batches"] * self.batch_size)


class DrawDataModule(pl.LightningDataModule):
    """Loader plumbing for every datamodule: DrawSampler order (deterministic, sharded across DDP ranks, resumable
    mid-epoch). Subclasses set `train_set` / `val_set` in `setup` and may override `shuffle_train`."""

    shuffle_train = True

    def __init__(
        self, batch_size: int = 1, num_workers: int = 4, seed: int = 0, pin_memory: bool = False
    ) -> None:
        super().__init__()
        self.batch_size, self.num_workers, self.seed, self.pin_memory = (
            batch_size,
            num_workers,
            seed,
            pin_memory,
        )
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def _batches_done(self) -> int:
        return self.trainer.fit_loop.epoch_loop.batch_progress.current.processed if self.trainer else 0

    def _loader_kwargs(self) -> dict:
        return dict(
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=worker_init
            if self.num_workers > 0
            else None,  # workers outlive SIGTERM (SafeStop)
            generator=torch.Generator().manual_seed(
                self.seed
            ),  # keeps the global RNG untouched by loader setup
        )

    def train_dataloader(self) -> DataLoader:
        sampler = DrawSampler(len(self.train_set), shuffle=self.shuffle_train, seed=self.seed)
        drop_last = len(self.train_set) >= self.batch_size
        return ResumableDataLoader(
            self.train_set, sampler, self._batches_done, drop_last=drop_last, **self._loader_kwargs()
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_set,
            sampler=DrawSampler(len(self.val_set), shuffle=False, pad=False),
            **self._loader_kwargs(),
        )

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
