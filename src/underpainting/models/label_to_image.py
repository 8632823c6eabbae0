"""What the label map -> image GANs (SPADE, pix2pix) share on top of the GAN base: the label set, sketch colours,
sample columns and the validation metrics against the paired photos."""

from __future__ import annotations

from typing import Any

import torch

from underpainting.data.labels import LabelSet, one_hot
from underpainting.errors import UserError
from underpainting.models.gan import GAN


@torch.no_grad()
def class_colour_error(
    generated: torch.Tensor, real: torch.Tensor, ids: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Mean over (image, class present) of the L1 distance between the class's mean RGB in the generated and in the
    real image, in [0, 1] units: does each region get its class's colour, whatever the texture.

    In fp32 whatever the caller's autocast: the per-class sums over pixels pass fp16's 65504 from 256x256 px on
    (validation runs under the trainer's 16-mixed autocast), as the Gram and MRF losses do for theirs."""
    b = ids.shape[0]
    onehot = one_hot(ids.clamp(0, num_classes - 1), num_classes).flatten(2)  # (B, C, HW)
    count = onehot.sum(2)  # (B, C)
    present = count > 0
    gen = (generated.float().flatten(2) + 1) / 2  # (B, 3, HW)
    ref = (real.float().flatten(2) + 1) / 2
    with torch.autocast(device_type=gen.device.type, enabled=False):
        mean_gen = torch.bmm(gen, onehot.transpose(1, 2)) / count.clamp(min=1)[:, None]  # (B, 3, C)
        mean_ref = torch.bmm(ref, onehot.transpose(1, 2)) / count.clamp(min=1)[:, None]
    err = (mean_gen - mean_ref).abs().mean(1)  # (B, C)
    return err[present].sum() / present.sum().clamp(min=1) if b else err.new_zeros(())


class LabelToImage(GAN):
    """A GAN whose batch is `{"label": (B, H, W) int64, "image": (B, 3, H, W)[, "path"]}`: a label map to paint and
    the photo it came from. Subclasses implement `generate` (the test-time output)."""

    not_hyperparameters = ("labels",)

    def __init__(self, labels: LabelSet, **gan: Any) -> None:
        super().__init__(**gan)
        self.labels = labels

    def colourise(self, ids: torch.Tensor) -> torch.Tensor:
        """Sketch colours; dont-care pixels (id = number of classes) shown white."""
        rgb = self.labels.colourise(ids.clamp(max=len(self.labels) - 1))
        return torch.where((ids >= len(self.labels))[:, None], torch.ones_like(rgb), rgb)

    def generate(self, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    def label_ids(self) -> int:
        """How many ids (0..n-1) the one-hot input takes."""
        return len(self.labels)

    def check_data_labels(self) -> None:
        """At setup, once: the data's ids fit the one-hot input. `one_hot` checks every batch on the CPU only (on a
        GPU that check would be a host sync per step), so a dont-care id the model has no channel for is caught here."""
        given = getattr(self.trainer.datamodule, "semantic_nc", None) if self._trainer is not None else None
        if given is not None and given > self.label_ids():
            raise UserError(
                f"the data gives label ids 0..{given - 1} (data.dontcare=true adds id {len(self.labels)} for "
                f"unlabelled pixels) but {type(self).__name__} one-hot encodes {self.label_ids()}: set "
                f"data.dontcare=false{self.dontcare_hint}"
            )

    dontcare_hint = ""

    def log_evaluation(self, batch: dict, stage: str) -> None:
        fake, real, ids = self.generate(batch), batch["image"], batch["label"]
        self.log_dict(
            {
                f"{stage}/L1": (fake.float() - real.float()).abs().mean(),
                f"{stage}/class_colour_error": class_colour_error(fake, real, ids, len(self.labels)),
            },
            sync_dist=True,
            batch_size=real.shape[0],
        )

    @torch.no_grad()
    def sample_images(self, batch: dict) -> dict[str, torch.Tensor]:
        """Columns of the sample grid: label colour map | generated | real."""
        return {
            "label": self.colourise(batch["label"]),
            "generated": self.generate(batch),
            "real": batch["image"],
        }

    @torch.no_grad()
    def eval_pairs(self, batch: dict) -> dict[str, torch.Tensor]:
        return {
            "generated": self.generate(batch),
            "reference": batch["image"],
            "source": self.colourise(batch["label"]),
        }
