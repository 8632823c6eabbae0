"""CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks").

Domains follow the `vangogh2photo` layout: A = Van Gogh paintings, B = landscape photos.
`G_AB` maps A -> B (painting -> photo) and `G_BA` maps B -> A (photo -> painting, the reconstruction direction).
`D_A` judges images of domain A, `D_B` images of domain B.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from underpainting.models.compile import CompiledNetworks
from underpainting.models.ema import AveragedWeights, GeneratorEMA, adapt_checkpoint
from underpainting.models.image_pool import ImagePool, pools_of_every_rank
from underpainting.models.losses.gan import GANLoss, GANMode
from underpainting.models.schedules import step_after_last_batch
from underpainting.runtime.rng import RNGState

log = logging.getLogger(__name__)


class CycleGAN(CompiledNetworks, AveragedWeights, pl.LightningModule):
    """Two generators, two discriminators, manual optimization: per iteration a G step with both D frozen, then a
    D step on pooled fakes (the reference's `optimize_parameters`)."""

    exportable = ("G_AB", "G_BA")  # networks `underpainting.export` writes out for inference

    def __init__(
        self,
        G_AB: nn.Module,
        G_BA: nn.Module,
        D_A: nn.Module,
        D_B: nn.Module,
        optimizer_G: Callable[..., Optimizer],
        optimizer_D: Callable[..., Optimizer],
        scheduler: Callable[..., LRScheduler] | None = None,
        gan_mode: GANMode = "lsgan",
        lambda_A: float = 10.0,
        lambda_B: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        seed: int = 0,
        ema_decay: float | None = None,
        compile: bool = False,
        compile_mode: str = "default",
        compile_backend: str = "inductor",
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(
            ignore=["G_AB", "G_BA", "D_A", "D_B", "optimizer_G", "optimizer_D", "scheduler"]
        )
        self.G_AB, self.G_BA, self.D_A, self.D_B = G_AB, G_BA, D_A, D_B
        self.optimizer_G, self.optimizer_D, self.scheduler = optimizer_G, optimizer_D, scheduler
        self.gan_loss = GANLoss(gan_mode)
        self.pool_A = ImagePool(pool_size, seed=seed)  # past fakes of domain A, shown to D_A
        self.pool_B = ImagePool(pool_size, seed=seed + 1)
        self.rng = RNGState()
        self.ema = GeneratorEMA({"G_AB": G_AB, "G_BA": G_BA}, ema_decay) if ema_decay else None
        self.init_compile(compile, compile_mode, compile_backend)

    def compiled_networks(self) -> dict[str, nn.Module]:
        return {"G_AB": self.G_AB, "G_BA": self.G_BA, "D_A": self.D_A, "D_B": self.D_B}

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        """Photo -> painting, the direction the project reconstructs with."""
        return self.G_BA(photo)

    def configure_optimizers(self):
        opt_g = self.optimizer_G(list(self.G_AB.parameters()) + list(self.G_BA.parameters()))
        opt_d = self.optimizer_D(list(self.D_A.parameters()) + list(self.D_B.parameters()))
        if self.scheduler is None:
            return [opt_g, opt_d]
        return [opt_g, opt_d], [self.scheduler(opt_g), self.scheduler(opt_d)]

    def generator_losses(self, real_A: torch.Tensor, real_B: torch.Tensor) -> tuple[dict, dict]:
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

    def discriminator_losses(self, real_A, real_B, fake_A, fake_B) -> dict:
        fake_A, fake_B = self.pool_A.query(fake_A), self.pool_B.query(fake_B)
        # D losses are halved "to slow down the rate at which D learns relative to G" (section 7.1).
        return {
            "D_A": 0.5 * (self.gan_loss(self.D_A(real_A), True) + self.gan_loss(self.D_A(fake_A), False)),
            "D_B": 0.5 * (self.gan_loss(self.D_B(real_B), True) + self.gan_loss(self.D_B(fake_B), False)),
        }

    def training_step(self, batch: dict, batch_idx: int) -> None:
        self.rng.restore_if_pending()
        opt_g, opt_d = self.optimizers()
        real_A, real_B = batch["A"], batch["B"]

        with self.toggled_optimizer(opt_g):  # D frozen while G learns to fool it
            g_losses, fakes = self.generator_losses(real_A, real_B)
            loss_g = sum(g_losses.values())
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(loss_g)
            opt_g.step()
        if self.ema is not None:
            self.ema.update()

        with self.toggled_optimizer(opt_d):
            d_losses = self.discriminator_losses(
                real_A, real_B, fakes["fake_A"].detach(), fakes["fake_B"].detach()
            )
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(sum(d_losses.values()))
            opt_d.step()

        logs = {f"train/{k}": v.detach() for k, v in {**g_losses, **d_losses}.items()}
        logs["train/G_total"] = loss_g.detach()
        self.log_dict(logs, prog_bar=False, batch_size=real_A.shape[0])
        self.log_dict(
            {"train/cycle": logs["train/cycle_A"] + logs["train/cycle_B"]},
            prog_bar=True,
            batch_size=real_A.shape[0],
        )
        self.log_dict(
            {"lr/G": opt_g.param_groups[0]["lr"], "lr/D": opt_d.param_groups[0]["lr"]},
            batch_size=real_A.shape[0],
        )
        step_after_last_batch(self, batch_idx)
        return logs  # read by the divergence guard (on the device, no host sync)

    def _log_cycle(self, batch: dict, stage: str) -> None:
        losses, _ = self.generator_losses(batch["A"], batch["B"])
        self.log_dict(
            {f"{stage}/{k}": v for k, v in losses.items() if k.startswith("cycle")},
            sync_dist=True,
            batch_size=batch["A"].shape[0],
        )

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._log_cycle(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._log_cycle(batch, "test")

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

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["image_pools"] = {"A": self.pool_A.state_dict(), "B": self.pool_B.state_dict()}
        if (by_rank := pools_of_every_rank(checkpoint["image_pools"])) is not None:
            checkpoint["image_pools_by_rank"] = by_rank  # [0] is the same as image_pools
        checkpoint["rng"] = self.rng.capture()
        if self.ema is not None:
            self.ema.fix_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if note := adapt_checkpoint(checkpoint["state_dict"], self.ema, self.exportable):
            log.info(note)
        pools = checkpoint.get("image_pools")
        if by_rank := checkpoint.get(
            "image_pools_by_rank"
        ):  # each rank its own (another rank count: wrap around)
            pools = by_rank[self.global_rank % len(by_rank)]
        if pools is not None:  # on the module's device; `query` follows the fakes' device after that
            self.pool_A.load_state_dict(pools["A"], device=self.device)
            self.pool_B.load_state_dict(pools["B"], device=self.device)
        if "rng" in checkpoint:
            self.rng.schedule(checkpoint["rng"])
