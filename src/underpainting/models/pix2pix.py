"""pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks") as the label ->
photo baseline for SPADE: U-Net generator, conditional 70x70 PatchGAN on (label, image), vanilla GAN + L1.

Training follows the reference `pix2pix_model.optimize_parameters`: one forward, then a D step on the detached fake
(loss halved, Sec. 3.3 / 6.2) and a G step with D frozen. The generator sees the label map as the sketch's RGB
colours (`input_mode="colour"`, as the reference datasets store labels: 3 channels, the reference parameter counts),
or one-hot (`input_mode="onehot"`, one channel per class).

At test time (validation, samples, export, `infer.py`) the generator follows the paper's protocol by default
(`test_protocol="paper"`, Sec. 3.3; the reference's `test.py` without `--eval`): dropout stays on and batch norm
uses the statistics of the test batch, which the reference's test.py fixes at one image. `test_protocol="eval"`
is plain eval mode (running statistics, no dropout).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from underpainting.data.labels import LabelSet, one_hot
from underpainting.errors import UserError
from underpainting.models.gan import Losses
from underpainting.models.label_to_image import LabelToImage
from underpainting.models.losses.gan import GANLoss, GANMode

EvalProtocol = Literal["paper", "eval"]


def check_protocol(protocol: str) -> None:
    if protocol not in ("paper", "eval"):
        raise UserError(f"test_protocol must be 'paper' or 'eval', got {protocol!r}")


@contextmanager
def protocol_mode(
    net: nn.Module, protocol: EvalProtocol = "paper", seed: int | None = None
) -> Iterator[nn.Module]:
    """Within the block, `net` follows `protocol`. "paper": every dropout active and every batch norm normalising
    with the statistics of its input batch, its running statistics left untouched; "eval": `net` as it is.
    `seed` fixes the dropout draws in a forked RNG, so the caller's random stream is not consumed.

    The batch norms get their input's statistics from eval mode without running statistics, not from training mode:
    a `SyncBatchNorm` (`trainer.sync_batchnorm`) in training mode pools the statistics of every DDP rank - numbers
    that depend on the GPU count - in a collective that ranks not rendering the sample grid never join (a hang)."""
    check_protocol(protocol)
    if protocol == "eval":
        yield net
        return
    saved = [(m, m.training) for m in net.modules()]
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    stats = [(m.running_mean, m.running_var) for m in norms]
    for m in norms:
        m.training, m.running_mean, m.running_var = False, None, None  # batch statistics, no update, no sync
    for m in net.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.training = True
    cuda = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=cuda, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            yield net
    finally:
        for m, training in saved:
            m.training = training
        for m, (mean, var) in zip(norms, stats, strict=True):
            m.running_mean, m.running_var = mean, var


def run_with_protocol(
    net: nn.Module, x: torch.Tensor, protocol: EvalProtocol, seed: int | None = None
) -> torch.Tensor:
    """`net(x)` under `protocol`; "paper" runs each image alone (the reference's test batch of one)."""
    if protocol == "eval":
        return net(x)
    with protocol_mode(net, protocol, seed):
        return torch.cat([net(x[i : i + 1]) for i in range(x.shape[0])])


def _first_conv_in(net: nn.Module) -> int | None:
    conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    return conv.in_channels if conv is not None else None


class Pix2Pix(LabelToImage):
    """U-Net generator, conditional PatchGAN; per iteration one fake, a D step on it (detached), then a G step.
    `**gan`: the optimizers, scheduler and run options (`GAN`)."""

    update_order = ("D", "G")  # the reference's optimize_parameters: backward_D, then backward_G

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        labels: LabelSet,
        input_mode: Literal["colour", "onehot"] = "colour",
        gan_mode: GANMode = "vanilla",
        lambda_L1: float = 100.0,
        test_protocol: EvalProtocol = "paper",
        **gan: Any,
    ) -> None:
        if (
            input_mode == "color"
        ):  # the name in checkpoints written before the project's spelling was made one
            input_mode = "colour"
        if input_mode not in ("colour", "onehot"):
            raise UserError(f"model.input_mode must be 'colour' or 'onehot', got {input_mode!r}")
        check_protocol(test_protocol)
        super().__init__(labels, generators={"G": G}, discriminators={"D": D}, **gan)
        self.gan_loss = GANLoss(gan_mode)
        self.input_nc = 3 if input_mode == "colour" else len(labels)

    def setup(self, stage: str) -> None:
        """Channel checks inside `trainer.fit`, so the message reaches the user unwrapped by Hydra."""
        self.check_data_labels()
        g_in, d_in, mode = _first_conv_in(self.G), _first_conv_in(self.D), self.hparams.input_mode
        if g_in is not None and g_in != self.input_nc:
            raise UserError(
                f"model.G takes {g_in} input channels but input_mode={mode!r} gives {self.input_nc}; "
                f"set model.G.in_channels={self.input_nc}"
            )
        if d_in is not None and d_in != self.input_nc + 3:
            raise UserError(
                f"model.D takes {d_in} input channels; the conditional D sees label ({self.input_nc}) + image (3): "
                f"set model.D.in_channels={self.input_nc + 3}"
            )

    def condition(self, label: torch.Tensor, paths=None) -> torch.Tensor:
        if self.hparams.input_mode == "onehot":
            return one_hot(label, len(self.labels), paths) * 2 - 1
        one_hot(label, len(self.labels), paths)  # same clear error for unknown ids
        return self.colourise(label)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        return self.G(condition)

    def generate(self, batch: dict) -> torch.Tensor:
        """Test-time output under `test_protocol` (dropout draws seeded: validation numbers are reproducible)."""
        cond = self.condition(batch["label"], batch.get("path"))
        return run_with_protocol(self.G, cond, self.hparams.test_protocol, self.hparams.seed)

    def step_inputs(self, batch: dict) -> dict[str, torch.Tensor]:
        cond = self.condition(batch["label"], batch.get("path"))
        return {"cond": cond, "real": batch["image"], "fake": self.G(cond)}  # one fake for both steps

    def discriminator_losses(self, cond: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> Losses:
        pred_fake = self.D(torch.cat([cond, fake.detach().to(cond.dtype)], 1))
        pred_real = self.D(torch.cat([cond, real], 1))
        return {"D_fake": self.gan_loss(pred_fake, False), "D_real": self.gan_loss(pred_real, True)}

    def discriminator_objective(self, losses: Losses) -> torch.Tensor:
        return 0.5 * sum(losses.values())  # halved: slows D relative to G (Sec. 3.3)

    def generator_losses(
        self, cond: torch.Tensor, real: torch.Tensor, fake: torch.Tensor
    ) -> tuple[Losses, Losses]:
        pred_fake = self.D(torch.cat([cond, fake.to(cond.dtype)], 1))
        losses = {
            "G_GAN": self.gan_loss(pred_fake, True, for_discriminator=False),
            "G_L1": F.l1_loss(fake.float(), real.float()) * self.hparams.lambda_L1,
        }
        return losses, {}
