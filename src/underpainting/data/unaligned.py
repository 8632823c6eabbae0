"""Unpaired two-domain data for CycleGAN: domain A (Van Gogh paintings) and domain B (landscape photos).

Sampling follows the reference's unaligned dataset: an epoch has max(|A|, |B|) items; A is visited in (shuffled)
order and B is drawn at random, or in step with A when `serial_batches` is set.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import torch
from torch.utils.data import Dataset

from underpainting.data.download import fetch_cyclegan_dataset
from underpainting.data.images import (
    DataError,
    filter_by_list,
    list_images,
    load_rgb,
    pil_to_tensor,
    validate_images,
)
from underpainting.data.labels import LabelSet
from underpainting.data.sampling import DrawDataModule
from underpainting.data.synthetic import SyntheticLandscapes
from underpainting.data.transforms import Preprocess

log = logging.getLogger(__name__)
LAYOUT = ("trainA", "trainB", "testA", "testB")


class UnalignedDataset(Dataset):
    """Items are (index, draw_seed) pairs from a DrawSampler; `load_A(i, g)` / `load_B(j, g)` return tensors."""

    def __init__(
        self, load_A, load_B, size_A: int, size_B: int, serial_batches: bool = False, train: bool = True
    ):
        self.load_A, self.load_B = load_A, load_B
        self.size_A, self.size_B = size_A, size_B
        self.serial_batches, self.train = serial_batches, train

    def __len__(self) -> int:
        return max(self.size_A, self.size_B)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, draw = item
        g = torch.Generator().manual_seed(draw) if self.train else None
        j = index % self.size_B if self.serial_batches or not self.train else draw % self.size_B
        return {"A": self.load_A(index % self.size_A, g), "B": self.load_B(j, g)}


class UnpairedDataModule(DrawDataModule):
    """Unpaired sources; with `serial_batches` A is visited in order and B in step with it."""

    @property
    def shuffle_train(self) -> bool:
        return not self.train_set.serial_batches


def read_file_filter(file: str | Path, column: str | None = None, equals: str | None = None) -> set[str]:
    """Names to keep: one per line in a .txt, or the first column of a CSV where `column` == `equals`."""
    path = Path(file)
    if not path.is_file():
        raise DataError(f"file filter {path} does not exist; fix data.filter.file or set data.filter=null")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); save the file filter as UTF-8"
        ) from None
    if path.suffix.lower() != ".csv":
        return {line.strip() for line in text.splitlines() if line.strip()}
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if not rows:
        return set()
    key = next(iter(rows[0]))
    if column is not None and column not in rows[0]:
        raise DataError(f"{path} has no column {column!r}; its columns are {', '.join(rows[0])}")
    keep = {r[key] for r in rows if column is None or r[column] == equals}
    return keep | {Path(k).name for k in keep}


class VanGoghLandscapes(UnpairedDataModule):
    """`root/{trainA,trainB,testA,testB}` image folders (the CycleGAN `vangogh2photo` layout)."""

    def __init__(
        self,
        root: str,
        download: bool = True,
        dataset_name: str = "vangogh2photo",
        sha256: str | None = None,
        preprocess: Preprocess | None = None,
        serial_batches: bool = False,
        max_dataset_size: int | None = None,
        filter: dict | None = None,
        on_bad_file: str = "error",
        **loader: int,
    ) -> None:
        super().__init__(**loader)
        self.root, self.download, self.dataset_name, self.sha256 = Path(root), download, dataset_name, sha256
        self.preprocess = preprocess or Preprocess()
        self.serial_batches, self.max_dataset_size = serial_batches, max_dataset_size
        self.filter, self.on_bad_file = filter, on_bad_file

    def prepare_data(self) -> None:
        if all((self.root / d).is_dir() for d in LAYOUT):
            return
        if self.download:
            fetch_cyclegan_dataset(self.dataset_name, self.root, self.sha256)
            return
        raise DataError(
            f"dataset folder {self.root} is missing or incomplete: expected {self.root}/trainA (Van Gogh paintings), "
            "trainB (landscape photos), testA and testB.\n"
            f"Fix: set data.download=true to fetch the CycleGAN '{self.dataset_name}' archive, or point data.root "
            "at a folder with that layout (e.g. data.root=../shared/data/vangogh_landscapes)."
        )

    def _files(self, split: str) -> list[Path]:
        files = list_images(self.root / split)
        if self.filter and split.endswith("A"):
            files = filter_by_list(files, read_file_filter(**self.filter))
            if not files:
                raise DataError(
                    f"the filter {dict(self.filter)} keeps none of the images in {self.root / split}"
                )
        files = validate_images(
            files, self.preprocess.min_size, self.on_bad_file, what=f"images in {self.root / split}"
        )
        return files[: self.max_dataset_size] if self.max_dataset_size else files

    def _loader(self, files: list[Path]):
        def load(i: int, g: torch.Generator | None) -> torch.Tensor:
            img = load_rgb(files[i])
            return pil_to_tensor(self.preprocess.apply(img, self.preprocess.params(img.size, g)))

        return load

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.prepare_data()  # on a fresh node prepare_data may not have run; it is a no-op when the data is there
        split = {s: self._files(s) for s in LAYOUT}
        log.info("vangogh_landscapes: %s", ", ".join(f"{s} {len(f)}" for s, f in split.items()))
        A, B, tA, tB = (split[s] for s in LAYOUT)
        self.train_set = UnalignedDataset(
            self._loader(A), self._loader(B), len(A), len(B), self.serial_batches
        )
        self.val_set = UnalignedDataset(self._loader(tA), self._loader(tB), len(tA), len(tB), train=False)


class SyntheticUnpaired(UnpairedDataModule):
    """Procedural paintings (A) and photos (B) of different scenes: unpaired, offline, deterministic."""

    def __init__(
        self,
        labels: LabelSet,
        image_size: int = 64,
        num_train: int = 64,
        num_val: int = 8,
        scene_seed: int = 0,
        **loader,
    ) -> None:
        super().__init__(**loader)
        self.renderer = SyntheticLandscapes(labels, image_size)
        self.num_train, self.num_val, self.scene_seed = num_train, num_val, scene_seed

    def _scenes(self, start: int, count: int, kind: str):
        cache: dict[int, torch.Tensor] = {}

        def load(i: int, g: torch.Generator | None) -> torch.Tensor:
            if i not in cache:  # A and B draw from disjoint seed ranges, so no photo has its painting's twin
                cache[i] = getattr(self.renderer(self.scene_seed + start + i), kind)
            img = cache[i]
            return img.flip(-1) if g is not None and torch.rand(1, generator=g).item() < 0.5 else img

        return load

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        n, m = self.num_train, self.num_val
        self.train_set = UnalignedDataset(self._scenes(0, n, "painting"), self._scenes(n, n, "photo"), n, n)
        self.val_set = UnalignedDataset(
            self._scenes(2 * n, m, "painting"), self._scenes(2 * n + m, m, "photo"), m, m, train=False
        )
