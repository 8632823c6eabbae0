"""What the label map -> image GANs (SPADE, pix2pix) share on top of the GAN base: the label set, sketch colours,
sample columns and the validation metrics against the paired photos."""

from __future__ import annotations

from typing import Any

import torch

from underpainting.data.labels import LabelSet, one_hot
from underpainting.models.gan import GAN


@torch.no_grad()
def class_colour_error(
    generated: torch.Tensor, real: torch.Tensor, ids: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Mean over (image, class present) of the L1 distance between the class's mean RGB in the generated and in the
    real image, in [0, 1] units: does each region get its class's colour, whatever the texture."""
    b = ids.shape[0]
    onehot = one_hot(ids.clamp(0, num_classes - 1), num_classes).flatten(2)  # (B, C, HW)
    count = onehot.sum(2)  # (B, C)
    present = count > 0
    gen = (generated.float().flatten(2) + 1) / 2  # (B, 3, HW)
    ref = (real.float().flatten(2) + 1) / 2
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

    def colorize(self, ids: torch.Tensor) -> torch.Tensor:
        """Sketch colours; dont-care pixels (id = number of classes) shown white."""
        rgb = self.labels.colorize(ids.clamp(max=len(self.labels) - 1))
        return torch.where((ids >= len(self.labels))[:, None], torch.ones_like(rgb), rgb)

    def generate(self, batch: dict) -> torch.Tensor:
        raise NotImplementedError

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
            "label": self.colorize(batch["label"]),
            "generated": self.generate(batch),
            "real": batch["image"],
        }

    @torch.no_grad()
    def eval_pairs(self, batch: dict) -> dict[str, torch.Tensor]:
        return {
            "generated": self.generate(batch),
            "reference": batch["image"],
            "source": self.colorize(batch["label"]),
        }
