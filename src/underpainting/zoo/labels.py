"""The label bridge: a sketch's class ids (`conf/labels/*.yaml`) -> the one-hot input a published SPADE generator was
trained on, with the conventions that NVlabs/SPADE's released test path really applies:

- `data/pix2pix_dataset.py`: the label PNG is read as its raw values; 255 becomes `label_nc` (the dontcare channel).
- `data/ade20k_dataset.py`: `postprocess` computes `label - 1` into a local name and returns nothing, so the batch
  keeps the raw ADE20K ids: channel k = ADE id k, 0 = "other objects" (the comment's intended shift never happens).
- COCO-Stuff: id k -> channel k (0 = person), 255 -> channel 182. Its instance maps start as a copy of the label
  map, so for a sketch without object instances the instance-edge channel is the label-boundary map.
- `models/pix2pix_model.py`: one-hot over `label_nc + contain_dontcare_label` channels, then `get_edges(instance)`.

Each sketch class goes to the first id its `coco_stuff:` / `ade20k:` list names; a class without one goes to the
dataset's catch-all (ADE20K 0 "other", COCO-Stuff 255 "unlabeled").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from underpainting.data.labels import LabelSet, instance_edges, one_hot
from underpainting.errors import WeightsError

UNLABELED = 255  # the reference maps this value to the dontcare channel `label_nc`
SOURCES = {"ade20k": "ade20k", "coco": "coco_stuff"}  # reference dataset_mode -> LabelSet source name
CATCH_ALL = {"ade20k": 0, "coco": UNLABELED}


@dataclass(frozen=True)
class LabelSpace:
    """What a SPADE generator's input channels mean: the reference's `dataset_mode`, `label_nc`,
    `contain_dontcare_label` and `no_instance` ("custom": this project's own label ids)."""

    dataset_mode: str
    label_nc: int
    contain_dontcare_label: bool
    no_instance: bool

    @property
    def semantic_nc(self) -> int:
        return self.label_nc + int(self.contain_dontcare_label) + int(not self.no_instance)

    def as_dict(self) -> dict:
        return asdict(self)


def source_label_map(ids: torch.Tensor, labels: LabelSet, space: LabelSpace) -> torch.Tensor:
    """(B, H, W) sketch ids -> the same map in the model's dataset ids (what its label PNGs would hold)."""
    if space.dataset_mode == "custom":
        if space.label_nc != len(labels):
            raise WeightsError(
                f"the generator was trained on {space.label_nc} custom classes but the label set has "
                f"{len(labels)}; pass the labels it was trained with (`labels=<name>`)"
            )
        return ids.long()
    if space.dataset_mode not in SOURCES:
        raise WeightsError(
            f"the label set lists no {space.dataset_mode} ids (conf/labels/*.yaml has coco_stuff and ade20k), so "
            f"sketches cannot be remapped for a {space.dataset_mode} model; use ade20k_pretrained or coco_pretrained"
        )
    source, other = SOURCES[space.dataset_mode], CATCH_ALL[space.dataset_mode]
    lut = torch.tensor([c.source_ids[source][0] if c.source_ids[source] else other for c in labels.classes])
    return lut.to(ids.device)[ids.long()]


def semantics(ids: torch.Tensor, labels: LabelSet, space: LabelSpace) -> torch.Tensor:
    """(B, H, W) sketch ids -> (B, semantic_nc, H, W): the reference's `preprocess_input` of the remapped map."""
    raw = source_label_map(ids, labels, space)
    channels = torch.where(raw == UNLABELED, torch.full_like(raw, space.label_nc), raw)
    onehot = one_hot(channels, space.label_nc + int(space.contain_dontcare_label))
    if space.no_instance:
        return onehot
    return torch.cat([onehot, instance_edges(raw)], 1)  # the label map stands in for the instance map
