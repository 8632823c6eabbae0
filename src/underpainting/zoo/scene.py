"""Published generators as stage-1 modules of `infer.py`: what `GeneratorScene` uses of a train.py checkpoint's
LightningModule (`G`, `E`, `hparams`, and `semantics` for SPADE or `condition` for pix2pix)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from lightning.fabric.utilities.data import AttributeDict
from torch import nn

from underpainting.data.labels import LabelSet
from underpainting.errors import WeightsError
from underpainting.zoo.labels import semantics, source_label_map
from underpainting.zoo.loader import Published

SPADE_TARGET = "underpainting.models.spade.SPADEModel"
PIX2PIX_TARGET = "underpainting.models.pix2pix.Pix2Pix"


class PublishedSPADE(nn.Module):
    """An NVlabs SPADE generator fed sketches through the label bridge (`zoo.labels`)."""

    def __init__(self, published: Published, labels: LabelSet) -> None:
        super().__init__()
        self.G, self.E, self.labels, self.space = published.net, None, labels, published.label_space
        self.hparams = AttributeDict(use_instance=False, test_protocol=published.test_protocol)

    def semantics(self, batch: dict) -> torch.Tensor:
        return semantics(batch["label"], self.labels, self.space)


class PublishedPix2Pix(nn.Module):
    """A junyanz pix2pix generator fed the sketch's palette colours (its label images are colour maps)."""

    def __init__(self, published: Published, labels: LabelSet) -> None:
        super().__init__()
        self.G, self.E, self.labels = published.net, None, labels
        self.hparams = AttributeDict(use_instance=False, test_protocol=published.test_protocol)

    def condition(self, ids: torch.Tensor) -> torch.Tensor:
        return self.labels.colourise(ids)


def published_scene(pub: Published, labels: LabelSet, targets: Sequence[str], key: str) -> nn.Module:
    """The stage-1 module for `pub`, after checking that this stage and the label set can use it."""
    where = f"`{key}`={pub.path}"
    if pub.source == "nvlabs":
        if SPADE_TARGET not in targets:
            raise WeightsError(f"{where} is an NVlabs SPADE generator: use it with infer/stage1=spade")
        if pub.net.use_vae:
            raise WeightsError(
                f"{where} takes a style code z (use_vae); infer.py runs SPADE without the encoder"
            )
        if pub.label_space is None:
            raise WeightsError(
                f"{where} takes {pub.net.semantic_nc} label channels, which match no pretrained dataset (ADE20K 151, "
                "COCO-Stuff 184, Cityscapes 36) and no opt.txt lies beside it: say what they mean with "
                "`stage1.options={dataset_mode: custom, label_nc: N, contain_dontcare_label: false, no_instance: true}`"
            )
        try:
            source_label_map(torch.zeros(1, 1, 1, dtype=torch.long), labels, pub.label_space)
        except WeightsError as e:
            raise WeightsError(f"{where}: {e}") from e
        return PublishedSPADE(pub, labels)
    if PIX2PIX_TARGET not in targets:
        raise WeightsError(
            f"{where} is a junyanz CycleGAN/pix2pix generator: use it as stage2.cyclegan.checkpoint, or with "
            "infer/stage1=pix2pix if it maps label colour maps to photos"
        )
    if pub.options["input_nc"] != 3:
        raise WeightsError(
            f"{where} takes {pub.options['input_nc']} input channels; a sketch gives 3 colours"
        )
    return PublishedPix2Pix(pub, labels)
