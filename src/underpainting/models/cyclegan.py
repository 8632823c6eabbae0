"""CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks").

Domains follow the `vangogh2photo` layout: A = Van Gogh paintings, B = landscape photos.
`G_AB` maps A -> B (painting -> photo) and `G_BA` maps B -> A (photo -> painting, the reconstruction direction).
`D_A` judges images of domain A, `D_B` images of domain B.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from underpainting.models.gan import GAN, Losses
from underpainting.models.image_pool import ImagePool
from underpainting.models.losses.gan import GANLoss, GANMode


class CycleGAN(GAN):
    """Two generators, two discriminators: per iteration a G step with both D frozen, then a D step on pooled fakes
    (the reference's `optimize_parameters`). `**gan`: the optimizers, scheduler and run options (`GAN`)."""

    def __init__(
        self,
        G_AB: nn.Module,
        G_BA: nn.Module,
        D_A: nn.Module,
        D_B: nn.Module,
        gan_mode: GANMode = "lsgan",
        lambda_A: float = 10.0,
        lambda_B: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        **gan: Any,
    ) -> None:
        # G_AB and G_BA are what `underpainting.export` writes out for inference
        super().__init__({"G_AB": G_AB, "G_BA": G_BA}, {"D_A": D_A, "D_B": D_B}, **gan)
        self.gan_loss = GANLoss(gan_mode)
        self.pool_A = ImagePool(pool_size, seed=self.hparams.seed)  # past fakes of domain A, shown to D_A
        self.pool_B = ImagePool(pool_size, seed=self.hparams.seed + 1)

    def image_pools(self) -> dict[str, ImagePool]:
        return {"A": self.pool_A, "B": self.pool_B}

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        """Photo -> painting, the direction the project reconstructs with."""
        return self.G_BA(photo)

    def step_inputs(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"real_A": batch["A"], "real_B": batch["B"]}

    def generator_losses(self, real_A: torch.Tensor, real_B: torch.Tensor) -> tuple[Losses, Losses]:
        hp = self.hparams
        fake_B, fake_A = self.G_AB(real_A), self.G_BA(real_B)
        rec_A, rec_B = self.G_BA(fake_B), self.G_AB(fake_A)
        losses = {
            "G_AB": self.gan_loss(self.D_B(fake_B), True, for_discriminator=False),
            "G_BA": self.gan_loss(self.D_A(fake_A), True, for_discriminator=False),
            "cycle_A": F.l1_loss(rec_A.float(), real_A.float()) * hp.lambda_A,
            "cycle_B": F.l1_loss(rec_B.float(), real_B.float()) * hp.lambda_B,
        }
        if hp.lambda_identity > 0:  # section 5.2: G_AB(b) ~ b keeps colour composition, weighted 0.5 x lambda
            losses["idt_B"] = (
                F.l1_loss(self.G_AB(real_B).float(), real_B.float()) * hp.lambda_B * hp.lambda_identity
            )
            losses["idt_A"] = (
                F.l1_loss(self.G_BA(real_A).float(), real_A.float()) * hp.lambda_A * hp.lambda_identity
            )
        return losses, {"fake_A": fake_A, "fake_B": fake_B}

    def discriminator_losses(self, real_A, real_B, fake_A, fake_B) -> Losses:
        fake_A, fake_B = self.pool_A.query(fake_A), self.pool_B.query(fake_B)
        # D losses are halved "to slow down the rate at which D learns relative to G" (section 7.1).
        return {
            "D_A": 0.5 * (self.gan_loss(self.D_A(real_A), True) + self.gan_loss(self.D_A(fake_A), False)),
            "D_B": 0.5 * (self.gan_loss(self.D_B(real_B), True) + self.gan_loss(self.D_B(fake_B), False)),
        }

    def progress_bar(self, logs: Losses) -> Losses:
        return {"train/cycle": logs["train/cycle_A"] + logs["train/cycle_B"]}

    def log_evaluation(self, batch: dict, stage: str) -> None:
        losses, _ = self.generator_losses(batch["A"], batch["B"])
        self.log_dict(
            {f"{stage}/{k}": v for k, v in losses.items() if k.startswith("cycle")},
            sync_dist=True,
            batch_size=batch["A"].shape[0],
        )

    @torch.no_grad()
    def sample_images(self, batch: dict) -> dict[str, torch.Tensor]:
        """Columns of the sample grid: real_A | fake_B | rec_A | idt_A, then the same for B."""
        real_A, real_B = batch["A"], batch["B"]
        fake_B, fake_A = self.G_AB(real_A), self.G_BA(real_B)
        return {
            "real_A": real_A,
            "fake_B": fake_B,
            "rec_A": self.G_BA(fake_B),
            "idt_A": self.G_BA(real_A),
            "real_B": real_B,
            "fake_A": fake_A,
            "rec_B": self.G_AB(fake_A),
            "idt_B": self.G_AB(real_B),
        }

    @torch.no_grad()
    def eval_pairs(self, batch: dict) -> dict[str, torch.Tensor]:
        """Photo -> painting outputs against real paintings (the direction the reconstruction uses)."""
        return {"generated": self.G_BA(batch["B"]), "reference": batch["A"], "source": batch["B"]}
