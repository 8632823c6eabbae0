"""Paired (label map, photo) data for SPADE and pix2pix.

Layouts:
- ``landscape_segments``: ``images/<name>.jpg`` + ``labels/<name>.png`` (8-bit class ids of the project's label set)
  and a classes file (``classes.yaml``). ``label_dir: labels_source`` with ``label_source`` set reads source-dataset ids
  and remaps them through the classes file (``label_source: index`` takes each pair's source from ``index.csv``).
- ``ade20k``: ADEChallengeData2016 (``images/{training,validation}/*.jpg`` + ``annotations/...png``, SceneParsing-150
  ids, 0 = other), remapped to the landscape classes; only landscape images are kept (``min_landscape_fraction``).
- ``coco_stuff``: the SPADE layout (``{train,val}_img/`` + ``{train,val}_label/``) or the official one
  (``images/{train,val}2017/`` + ``annotations/{train,val}2017/``), COCO-Stuff ids (labels.txt id - 1, 255 unlabeled),
  remapped and filtered the same way.

Every item is ``{"label": (H, W) int64, "image": (3, H, W) float in [-1, 1], "path": str}`` (+ ``"instance"`` when an
instance folder is given). Labels are resized with nearest neighbour and cropped/flipped in step with the image.
`SyntheticPairsDataModule` renders procedural (label, photo) pairs with the same label set: the offline default.
"""

from __future__ import annotations

import csv
import io
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image
from torch.utils.data import Dataset

from underpainting.data.images import (
    DataError,
    list_images,
    load_rgb,
    open_image,
    pil_to_tensor,
    validate_images,
)
from underpainting.data.labels import LabelSet
from underpainting.data.sampling import DrawDataModule
from underpainting.data.synthetic import SyntheticLandscapes
from underpainting.data.transforms import Preprocess

log = logging.getLogger(__name__)

LAYOUTS = ("landscape_segments", "ade20k", "coco_stuff")
# Spellings of the source label spaces in classes files and index.csv -> LabelSet.SOURCES.
SOURCE_ALIASES = {
    "coco_stuff": "coco_stuff",
    "coco-stuff": "coco_stuff",
    "cocostuff": "coco_stuff",
    "coco": "coco_stuff",
    "ade20k": "ade20k",
    "ade20k-150": "ade20k",
    "ade": "ade20k",
}
DONTCARE_VALUE = 255  # unlabeled pixels in COCO-Stuff PNGs and the usual "ignore" value


# ----------------------------------------------------------------------------------------------------------- classes
def _normalise_class(c: Mapping) -> dict:
    """Accept both the conf/labels layout (`coco_stuff: [...]`) and the dataset layout (`source_ids: {coco-stuff: }`)."""
    out = {k: v for k, v in c.items() if k != "source_ids"}
    for key, values in (c.get("source_ids") or {}).items():
        if key not in SOURCE_ALIASES:
            raise ValueError(f"class {c.get('name')!r}: unknown source label space {key!r} in source_ids")
        out[SOURCE_ALIASES[key]] = list(values or [])
    return out


def load_classes(path: str | Path) -> LabelSet:
    """A LabelSet from a classes file: the project's conf/labels/*.yaml or a dataset's classes.yaml."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"classes file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
        return LabelSet([_normalise_class(c) for c in data["classes"]])
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as err:
        raise DataError(f"classes file {path} cannot be used: {err}") from err


def check_same_labels(model_labels: LabelSet, data_labels: LabelSet, where: str) -> None:
    """Stop when the dataset's classes file and the configured label set disagree (ids would mean other things)."""
    if model_labels.names != data_labels.names:
        diff = [
            f"{i}: {a!r} vs {b!r}"
            for i, (a, b) in enumerate(zip(model_labels.names, data_labels.names, strict=False))
            if a != b
        ]
        raise DataError(
            f"the classes in {where} ({len(data_labels)}) differ from the configured label set ({len(model_labels)}): "
            f"{'; '.join(diff[:5]) or 'different counts'}. Use the same classes file for data and model "
            "(labels=...), or remap the dataset."
        )


# ------------------------------------------------------------------------------------------------------ pair lists
@dataclass(frozen=True)
class Pair:
    image: Path
    label: Path
    source: str | None = None  # label space of the PNG values: None (project ids), "coco_stuff", "ade20k"
    instance: Path | None = None


def match_pairs(
    image_dir: Path, label_dir: Path, source: str | None = None, instance_dir: Path | None = None
) -> list[Pair]:
    """Pair `image_dir/<stem>.*` with `label_dir/<stem>.png` (and instance maps); a missing partner is an error."""
    images = list_images(image_dir)
    if not label_dir.is_dir():
        raise DataError(f"label folder {label_dir} does not exist")
    labels = {p.stem: p for p in label_dir.iterdir() if p.suffix.lower() == ".png"}
    if instance_dir is not None and not instance_dir.is_dir():
        raise DataError(f"instance folder {instance_dir} does not exist")
    instances = {p.stem: p for p in instance_dir.iterdir()} if instance_dir is not None else {}
    missing = [p.name for p in images if p.stem not in labels]
    missing_inst = [p.name for p in images if instance_dir is not None and p.stem not in instances]
    if missing or missing_inst:
        what = missing or missing_inst
        folder = label_dir if missing else instance_dir
        raise DataError(
            f"{len(what)} of {len(images)} images in {image_dir} have no .png partner in {folder} "
            f"(first: {', '.join(what[:5])}); pairs are matched by file name stem"
        )
    return [Pair(p, labels[p.stem], source, instances.get(p.stem)) for p in images]


def _index_sources(index_csv: Path) -> dict[str, str]:
    """name -> label space, from the dataset's index.csv (columns name, source_dataset); DataError naming it."""
    try:
        rows = list(csv.DictReader(io.StringIO(index_csv.read_text(encoding="utf-8"), newline="")))
        return {row["name"]: SOURCE_ALIASES[row["source_dataset"]] for row in rows}
    except (OSError, ValueError) as err:  # ValueError: not UTF-8 text
        raise DataError(f"{index_csv}: cannot be read as a CSV index ({err})") from None
    except KeyError as err:
        raise DataError(
            f"{index_csv}: every row needs a `name` and a `source_dataset` among {', '.join(SOURCE_ALIASES)} "
            f"({err} is missing or unknown)"
        ) from None


def landscape_segments_pairs(
    root: Path, label_dir: str = "labels", label_source: str | None = None, instance_dir: str | None = None
) -> list[Pair]:
    pairs = match_pairs(
        root / "images", root / label_dir, None, root / instance_dir if instance_dir else None
    )
    if label_source is None:
        return pairs
    if label_source == "index":
        index = root / "index.csv"
        if not index.is_file():
            raise DataError(f"label_source=index needs {index} (columns name, source_dataset)")
        sources = _index_sources(index)
        unknown = [p.image.stem for p in pairs if p.image.stem not in sources]
        if unknown:
            raise DataError(f"{index} does not list {len(unknown)} pairs (first: {unknown[:3]})")
        return [Pair(p.image, p.label, sources[p.image.stem], p.instance) for p in pairs]
    if label_source not in SOURCE_ALIASES:
        raise ValueError(
            f"label_source must be one of {sorted(set(SOURCE_ALIASES))} or 'index', got {label_source!r}"
        )
    return [Pair(p.image, p.label, SOURCE_ALIASES[label_source], p.instance) for p in pairs]


def ade20k_pairs(root: Path, split: str) -> list[Pair]:
    """ADEChallengeData2016 (SceneParsing): `root` is that folder (or its parent)."""
    if not (root / "images").is_dir() and (root / "ADEChallengeData2016").is_dir():
        root = root / "ADEChallengeData2016"
    folder = {"train": "training", "val": "validation"}[split]
    return match_pairs(root / "images" / folder, root / "annotations" / folder, "ade20k")


def coco_stuff_pairs(root: Path, split: str) -> list[Pair]:
    """COCO-Stuff in the SPADE layout ({split}_img, {split}_label) or the official one (images/, annotations/)."""
    if (root / f"{split}_img").is_dir():
        return match_pairs(root / f"{split}_img", root / f"{split}_label", "coco_stuff")
    for ann in ("annotations", "stuffthingmaps_trainval2017"):
        if (root / "images" / f"{split}2017").is_dir() and (root / ann / f"{split}2017").is_dir():
            return match_pairs(root / "images" / f"{split}2017", root / ann / f"{split}2017", "coco_stuff")
    raise DataError(
        f"{root} is not a COCO-Stuff folder: expected {split}_img/ + {split}_label/ (SPADE layout) or "
        f"images/{split}2017/ + annotations/{split}2017/ (official stuffthingmaps)"
    )


# ----------------------------------------------------------------------------------------------------------- labels
class LabelReader:
    """Reads label PNGs into project ids: source ids through the classes file's lookup tables, unknown ids -> error."""

    def __init__(self, labels: LabelSet, dontcare: bool = False) -> None:
        self.labels = labels
        self.dontcare = dontcare
        self.luts = {s: labels.source_lut(s) for s in LabelSet.SOURCES}

    @property
    def dontcare_id(self) -> int:
        return len(self.labels)

    def read(self, path: Path, source: str | None = None) -> np.ndarray:
        try:
            with open_image(path) as img:
                if img.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                    raise DataError(
                        f"{path}: label maps must be single-channel PNGs of class ids (mode L), got mode {img.mode}; "
                        "for a sketch painted in the palette use underpainting.data.sketch.decode_sketch"
                    )
                raw = np.array(img, dtype=np.int64)
        except OSError as err:
            raise DataError(
                f"{path}: cannot be read as a label map ({err}); replace or remove the file"
            ) from err
        care = raw != DONTCARE_VALUE if self.dontcare else None
        if source is not None:
            if raw.max(initial=0) > 255 or raw.min(initial=0) < 0:
                raise DataError(f"{path}: {source} label values must be 0..255, found {int(raw.max())}")
            ids = self.luts[source][raw].astype(np.int64)
        else:
            ids = raw
            bad_mask = (ids >= len(self.labels)) | (ids < 0)
            if care is not None:
                bad_mask &= care
            if bad_mask.any():
                bad = np.unique(ids[bad_mask])
                raise DataError(
                    f"{path}: label id(s) {bad[:10].tolist()} ({int(bad_mask.sum())} px) are not in the label set "
                    f"(ids 0..{len(self.labels) - 1}: {', '.join(self.labels.names)}). If the file holds COCO-Stuff "
                    "or ADE20K ids, set data.label_source (coco_stuff, ade20k, or index) to remap them through the "
                    f"classes file; if {DONTCARE_VALUE} marks unlabeled pixels, set data.dontcare=true."
                )
        if care is not None:
            ids = np.where(care, ids, self.dontcare_id)
        return ids


def landscape_fraction(reader: LabelReader, pair: Pair) -> float:
    """Share of pixels that map to a class other than 0 (`other`) and are labelled."""
    ids = reader.read(pair.label, pair.source)
    return float(((ids > 0) & (ids < len(reader.labels))).mean())


# ---------------------------------------------------------------------------------------------------------- dataset
class SegmentationPairs(Dataset):
    """Label/photo pairs with the reference preprocessing (resize_and_crop + flip) applied in step to the image
    (bicubic) and the label and instance maps (nearest neighbour, so ids are never blended).

    Items are indexed by `(index, draw_seed)` from a `DrawSampler` (crop and flip come from the draw, so they do not
    depend on workers or ranks), or by a plain int for the deterministic evaluation version.
    """

    def __init__(
        self, pairs: Sequence[Pair], reader: LabelReader, preprocess: Preprocess, train: bool = True
    ) -> None:
        self.pairs, self.reader, self.preprocess, self.train = list(pairs), reader, preprocess, train

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        index, draw = item if isinstance(item, tuple) else (item, None)
        pair = self.pairs[index]
        img = load_rgb(pair.image)
        ids = self.reader.read(pair.label, pair.source)
        if ids.shape != (img.height, img.width):
            raise DataError(
                f"{pair.label} is {ids.shape[1]}x{ids.shape[0]} but its image {pair.image} is "
                f"{img.width}x{img.height}; label maps must be pixel-aligned with their photos"
            )
        g = torch.Generator().manual_seed(draw) if self.train and draw is not None else None
        params = self.preprocess.params(img.size, g)
        out = {
            "label": self._map(Image.fromarray(ids.astype(np.int32), "I"), params),
            "image": pil_to_tensor(self.preprocess.apply(img, params)),
            "path": str(pair.image),
        }
        if pair.instance is not None:
            with open_image(pair.instance) as inst:
                out["instance"] = self._map(Image.fromarray(np.array(inst, dtype=np.int32), "I"), params)
        return out

    def _map(self, ids: Image.Image, params) -> torch.Tensor:
        return torch.from_numpy(np.array(self.preprocess.apply(ids, params, Image.NEAREST), dtype=np.int64))


# ------------------------------------------------------------------------------------------------------ datamodules
class SegmentationDataModule(DrawDataModule):
    """Label -> photo pairs from a landscape_segments, ADE20K or COCO-Stuff folder.

    Args:
        root: the dataset folder.
        labels: the project's label set (conf/labels/landscape.yaml); ids in the data must mean the same classes.
        layout: landscape_segments, ade20k or coco_stuff.
        classes_file: the classes file whose source-id lists remap COCO-Stuff/ADE20K ids (default: the dataset's
            classes.yaml if present, else `labels`); it must list the same classes as `labels`.
        label_dir / label_source / instance_dir: landscape_segments only (see module docstring).
        preprocess: resize/crop/flip (`underpainting.data.transforms.Preprocess`), applied in step to labels.
        val_count: landscape_segments only: pairs held out (seeded by `split_seed`) for validation and test.
        max_val: cap on validation pairs (ADE20K/COCO-Stuff validation splits are large).
        min_landscape_fraction: keep pairs whose pixels are at least this share non-`other` after remapping
            (ADE20K/COCO-Stuff hold mostly indoor and street scenes).
        dontcare: pixel value 255 becomes an extra `dont care` class (id = number of classes) instead of an error
            (project ids) or `other` (source ids); the generator then takes one more input channel.
    """

    def __init__(
        self,
        root: str | Path,
        labels: LabelSet,
        layout: str = "landscape_segments",
        classes_file: str | Path | None = None,
        label_dir: str = "labels",
        label_source: str | None = None,
        instance_dir: str | None = None,
        preprocess: Preprocess | None = None,
        val_count: int = 4,
        max_val: int | None = 64,
        split_seed: int = 1889,
        min_landscape_fraction: float | None = None,
        dontcare: bool = False,
        on_bad_file: str = "error",
        **loader,
    ) -> None:
        super().__init__(**loader)
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.root, self.layout = Path(root).expanduser(), layout
        self.labels, self.classes_file = labels, classes_file
        self.label_dir, self.label_source, self.instance_dir = label_dir, label_source, instance_dir
        self.preprocess = preprocess or Preprocess()
        self.val_count, self.max_val, self.split_seed = val_count, max_val, split_seed
        self.min_landscape_fraction = min_landscape_fraction
        self.dontcare, self.on_bad_file = dontcare, on_bad_file

    @property
    def semantic_nc(self) -> int:
        return len(self.labels) + int(self.dontcare)

    def _label_set(self) -> LabelSet:
        path = self.classes_file or (
            self.root / "classes.yaml" if (self.root / "classes.yaml").is_file() else None
        )
        if path is None:
            return self.labels
        data_labels = load_classes(path)
        check_same_labels(self.labels, data_labels, str(path))
        return data_labels  # same names and ids; its source lists drive the remapping

    def _pairs(self) -> tuple[list[Pair], list[Pair]]:
        if not self.root.is_dir():
            raise DataError(
                f"dataset folder {self.root} does not exist; set data.root to your {self.layout} folder"
            )
        if self.layout == "landscape_segments":
            pairs = landscape_segments_pairs(self.root, self.label_dir, self.label_source, self.instance_dir)
            order = list(range(len(pairs)))
            random.Random(self.split_seed).shuffle(order)
            n_val = min(self.val_count, max(len(pairs) - 1, 0))
            return [pairs[i] for i in sorted(order[n_val:])], [pairs[i] for i in sorted(order[:n_val])]
        finder = ade20k_pairs if self.layout == "ade20k" else coco_stuff_pairs
        return finder(self.root, "train"), finder(self.root, "val")

    def _check(self, pairs: list[Pair], reader: LabelReader, what: str) -> list[Pair]:
        min_size = self.preprocess.min_size
        good = set(
            validate_images([p.image for p in pairs], min_size, self.on_bad_file, what=f"{what} photos")
        )
        pairs = [p for p in pairs if p.image in good]
        if self.min_landscape_fraction is not None:
            kept = [p for p in pairs if landscape_fraction(reader, p) >= self.min_landscape_fraction]
            log.info(
                "%s: kept %d of %d %s pairs with >= %.0f%% landscape pixels",
                self.root,
                len(kept),
                len(pairs),
                what,
                100 * self.min_landscape_fraction,
            )
            if not kept:
                raise DataError(
                    f"no {what} pair in {self.root} has {self.min_landscape_fraction:.0%} landscape pixels "
                    "(after remapping through the classes file); lower data.min_landscape_fraction"
                )
            return kept
        if all(p.source is None for p in pairs):
            for p in pairs:  # unknown ids fail here, at setup, naming the file
                reader.read(p.label)
        return pairs

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        reader = LabelReader(self._label_set(), self.dontcare)
        train, val = self._pairs()
        train = self._check(train, reader, "training")
        val = self._check(val, reader, "validation") if val else train[:1]
        if self.max_val is not None:
            val = val[: self.max_val]
        self.train_set = SegmentationPairs(train, reader, self.preprocess, train=True)
        self.val_set = SegmentationPairs(val, reader, self.preprocess, train=False)
        log.info("%s (%s): %d training and %d validation pairs", self.root, self.layout, len(train), len(val))


class SyntheticPairs(Dataset):
    """Procedural (label map, photo) pairs: item i is scene `scene_seed + i`, rendered once and cached."""

    def __init__(
        self, labels: LabelSet, size: int, count: int, scene_seed: int = 0, train: bool = True, flip=True
    ):
        self.scenes = SyntheticLandscapes(labels, size)
        self.count, self.scene_seed, self.train, self.flip = count, scene_seed, train, flip
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return self.count

    def render(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i not in self._cache:
            # Layout then photo from one generator, as SyntheticLandscapes.__call__ does, without the costlier
            # painting (rendered after the photo, so the photo is the same).
            g = torch.Generator().manual_seed(self.scene_seed + i)
            lab = self.scenes.layout(g)
            self._cache[i] = (lab, self.scenes.photo(lab, g))
        return self._cache[i]

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        index, draw = item if isinstance(item, tuple) else (item, None)
        lab, photo = self.render(index)
        if self.train and self.flip and draw is not None:
            if torch.rand(1, generator=torch.Generator().manual_seed(draw)).item() < 0.5:
                lab, photo = lab.flip(-1), photo.flip(-1)
        return {"label": lab, "image": photo, "path": f"synthetic:{self.scene_seed + index}"}


class SyntheticPairsDataModule(DrawDataModule):
    """The embedded default for SPADE/pix2pix: procedural landscapes as label -> photo pairs (no download)."""

    def __init__(
        self,
        labels: LabelSet,
        image_size: int = 256,
        num_train: int = 512,
        num_val: int = 8,
        scene_seed: int = 0,
        flip: bool = True,
        dontcare: bool = False,
        **loader,
    ) -> None:
        super().__init__(**loader)
        self.labels, self.image_size = labels, image_size
        self.num_train, self.num_val, self.scene_seed, self.flip = num_train, num_val, scene_seed, flip
        self.dontcare = (
            dontcare  # the scenes never use it; here so model configs can interpolate data.dontcare
        )

    @property
    def semantic_nc(self) -> int:
        return len(self.labels) + int(self.dontcare)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            n, m = self.num_train, self.num_val
            self.train_set = SyntheticPairs(self.labels, self.image_size, n, self.scene_seed, flip=self.flip)
            self.val_set = SyntheticPairs(self.labels, self.image_size, m, self.scene_seed + n, train=False)
