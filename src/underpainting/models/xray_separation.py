"""Mixed X-ray separation (Pu et al. 2022, "Mixed X-Ray Image Separation for Artworks With Concealed Designs") as a
LightningModule trained per painting, self-supervised: no separated X-ray is ever seen.

The surface painting's X-ray x1 is predicted from the photo (`networks.xray.XRaySeparationNet`); the concealed
design's X-ray is the remainder x2 = X - x1. Loss terms (weights from the reference code `XraySepNet_test.py`):

- `xray_reconstruction` (1.0): MSE(x1, X). The reference's analysis network outputs both parts and compares their
  sum with X; here the concealed part is the remainder, so the sum is X by construction, and the term that ties
  the parts to the mixture is the surface part reconstructing all of the X-ray it can (the regression baseline's
  own criterion). It fixes what exclusion cannot see: smooth levels.
- `visible_reconstruction` (0.5): MSE(V(x1), luminance of the photo), V the reconstruction CNN.
- `exclusion` (0.1): the gradient exclusion loss between x2 and x1 (3 scales), so that no edge of the surface
  painting is left in the concealed part.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from underpainting.models.compile import CompiledNetworks
from underpainting.models.losses.exclusion import ExclusionLoss
from underpainting.models.networks.xray import XRaySeparationNet


def _view(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) -> (B, 3, H, W) in [-1, 1], each image stretched between its 0.5 % and 99.5 % quantiles."""
    out = []
    for img in x.float():
        lo, hi = torch.quantile(
            img.flatten()[:: max(1, img.numel() // 200_000)], torch.tensor([0.005, 0.995])
        )
        out.append(((img - lo) / (hi - lo).clamp_min(1e-8)).clamp(0, 1).expand(3, -1, -1) * 2 - 1)
    return torch.stack(out)


def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12)


class XRaySeparation(CompiledNetworks, pl.LightningModule):
    def __init__(
        self,
        net: XRaySeparationNet,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., LRScheduler] | None = None,
        lambda_xray: float = 1.0,
        lambda_visible: float = 0.5,
        lambda_exclusion: float = 0.1,
        exclusion_levels: int = 3,
        compile: bool = False,
        compile_mode: str = "default",
        compile_backend: str = "inductor",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net, self.optimizer_factory, self.scheduler_factory = net, optimizer, scheduler
        self.exclusion = ExclusionLoss(exclusion_levels)
        self.weights = {
            "xray_reconstruction": float(lambda_xray),
            "visible_reconstruction": float(lambda_visible),
            "exclusion": float(lambda_exclusion),
        }
        self.init_compile(compile, compile_mode, compile_backend)

    def compiled_networks(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def forward(
        self, xray: torch.Tensor, visible: torch.Tensor, init: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return self.net(xray, visible, init)

    def losses(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x1, x2 = out["x1"].float(), out["x2"].float()
        return {
            "xray_reconstruction": F.mse_loss(x1, batch["xray"]),
            "visible_reconstruction": F.mse_loss(out["visible_rec"].float(), batch["luma"]),
            "exclusion": self.exclusion(x2, x1),
        }

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        terms = self.losses(batch, self(batch["xray"], batch["visible"], batch["init"]))
        loss = sum(self.weights[k] * v for k, v in terms.items())
        n = batch["xray"].shape[0]
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, on_step=True, batch_size=n)
        self.log("train/loss", loss, on_step=True, prog_bar=True, batch_size=n)
        return loss

    @torch.no_grad()
    def separate(
        self, xray: torch.Tensor, visible: torch.Tensor, init: torch.Tensor, rows: int = 512
    ) -> dict:
        """Whole-image parts (1, H, W each, on the CPU) in strips of `rows` rows with overlap (any size fits)."""
        was = self.training
        self.eval()
        h = xray.shape[-2]
        pad = self.net.receptive_field
        dev = self.device
        x1 = torch.empty(xray.shape)
        for y0 in range(0, h, rows):
            a, b = max(0, y0 - pad), min(h, y0 + rows + pad)
            part = (
                self.net.surface(visible[None, :, a:b].to(dev), init[None, :, a:b].to(dev)).float().cpu()[0]
            )
            x1[:, y0 : min(h, y0 + rows)] = part[:, y0 - a : y0 - a + min(rows, h - y0)]
        self.train(was)
        return {"surface": x1, "hidden": xray.float().cpu() - x1}

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """On the whole painting, in strips (radiographs run to tens of megapixels): the reconstruction error and,
        for simulations, how close the concealed part is to the truth, beside the baseline's."""
        xray, visible, init = batch["xray"][0], batch["visible"][0], batch["init"][0]
        parts = self.separate(xray, visible, init)
        self.log("val/xray_reconstruction", F.mse_loss(parts["surface"], xray.cpu()), batch_size=1)
        if "truth" in batch:
            truth = batch["truth"][0].cpu()
            self.log("val/hidden_r", correlation(parts["hidden"], truth).float(), batch_size=1, prog_bar=True)
            self.log("val/baseline_r", correlation((xray - init).cpu(), truth).float(), batch_size=1)

    def sample_images(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        parts = [
            self.separate(x, v, i)
            for x, v, i in zip(batch["xray"], batch["visible"], batch["init"], strict=True)
        ]
        cols = {
            "xray": _view(batch["xray"].cpu()),
            "visible": batch["visible"].float().cpu() * 2 - 1,
            "surface part": _view(torch.stack([p["surface"] for p in parts])),
            "hidden part": _view(torch.stack([p["hidden"] for p in parts])),
            "baseline": _view((batch["xray"] - batch["init"]).cpu()),
        }
        if "truth" in batch:
            cols["truth"] = _view(batch["truth"].cpu())
        return cols

    def configure_optimizers(self):
        opt = self.optimizer_factory(self.net.parameters())
        if self.scheduler_factory is None:
            return opt
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": self.scheduler_factory(opt), "interval": "epoch"},
        }
