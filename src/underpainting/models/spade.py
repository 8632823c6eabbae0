"""SPADE / GauGAN (Park et al. 2019, "Semantic Image Synthesis with Spatially-Adaptive Normalization"): a label map
painted by a person (sky, mountain, grass, flowers...) -> a photo-like landscape.

Training follows NVlabs/SPADE `pix2pix_trainer.py`: per iteration one generator step (hinge GAN + feature matching
+ VGG perceptual [+ KL with the style encoder]) with D frozen, then one discriminator step on a fresh, detached fake
of the updated generator; TTUR learning rates. The batch is `{"label": (B, H, W) int64, "image": (B, 3, H, W)}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from underpainting.data.labels import LabelSet, instance_edges, one_hot
from underpainting.errors import DataError, UserError
from underpainting.models.gan import Losses
from underpainting.models.label_to_image import LabelToImage
from underpainting.models.losses.gan import GANLoss, GANMode
from underpainting.models.losses.matching import FeatureMatchingLoss, kl_divergence
from underpainting.models.networks.spade import ConvEncoder, MultiscaleDiscriminator, SPADEGenerator


class SPADEModel(LabelToImage):
    """SPADE generator + multi-scale discriminator (+ style encoder), trained as in NVlabs/SPADE.

    Args:
        G, D, E: the networks (E: `ConvEncoder` or None; with it G must have `use_vae=True`).
        labels: the label set; G's `semantic_nc` must be its size (+1 with `contain_dontcare_label`, +1 with
            `use_instance`) and D's `label_nc` the same.
        vgg: a factory for the perceptual loss (`VGGPerceptualLoss`, built only when `lambda_vgg` > 0, kept out of
            checkpoints since its weights are fixed).
        lambda_feat, lambda_vgg, lambda_kld: loss weights (reference 10, 10, 0.05).
        **gan: the optimizers, scheduler and run options (`GAN`).
    """

    not_hyperparameters = ("labels", "vgg")

    def __init__(
        self,
        G: SPADEGenerator,
        D: MultiscaleDiscriminator,
        labels: LabelSet,
        E: ConvEncoder | None = None,
        vgg: Callable[[], nn.Module] | None = None,
        gan_mode: GANMode = "hinge",
        lambda_feat: float = 10.0,
        lambda_vgg: float = 10.0,
        lambda_kld: float = 0.05,
        contain_dontcare_label: bool = False,
        use_instance: bool = False,
        **gan: Any,
    ) -> None:
        # G and the style encoder E are the G side: trained by optimizer_G, averaged, exported
        super().__init__(labels, generators={"G": G, "E": E}, discriminators={"D": D}, **gan)
        self.semantic_nc = len(labels) + int(contain_dontcare_label) + int(use_instance)
        self.num_label_channels = len(labels) + int(contain_dontcare_label)
        self.gan_loss = GANLoss(gan_mode)
        self.feat_loss = FeatureMatchingLoss()
        # The VGG is built in setup("fit") - not needed to export or paint - and is not a child module: its weights
        # are fixed, so they stay out of checkpoints and optimizers.
        self._vgg_factory = vgg
        object.__setattr__(self, "_vgg", None)

    def compiled_networks(self) -> dict[str, nn.Module]:
        nets = super().compiled_networks()  # + the VGG, which exists after setup("fit")
        return {**nets, "vgg": self._vgg} if self._vgg is not None else nets

    def setup(self, stage: str) -> None:
        """Checks and the VGG load run here, inside `trainer.fit`, so their errors reach the user unwrapped (and
        before the first step); Hydra would wrap errors raised in __init__."""
        self._check_networks()
        self.check_data_labels()
        if stage == "fit" and self.hparams.lambda_vgg > 0 and self._vgg is None:
            if self._vgg_factory is None:
                raise UserError(
                    "model.lambda_vgg > 0 needs model.vgg (the VGG19 perceptual loss); or set lambda_vgg=0"
                )
            object.__setattr__(self, "_vgg", self._vgg_factory())

    def _check_networks(self) -> None:
        hint = (
            f"the label set has {len(self.labels)} classes"
            f"{' + dont-care' if self.hparams.contain_dontcare_label else ''}"
            f"{' + instance edges' if self.hparams.use_instance else ''} = {self.semantic_nc} channels"
        )
        if self.G.semantic_nc != self.semantic_nc:
            raise UserError(
                f"model.G.semantic_nc is {self.G.semantic_nc} but {hint}; set model.G.semantic_nc"
            )
        if self.D.label_nc != self.semantic_nc:
            raise UserError(f"model.D.label_nc is {self.D.label_nc} but {hint}; set model.D.label_nc")
        if (self.E is not None) != self.G.use_vae:
            raise UserError("the style encoder (model.E) and model.G.use_vae must be set together")
        if self.E is not None and self.E.z_dim != self.G.z_dim:
            raise UserError(f"model.E.z_dim ({self.E.z_dim}) must equal model.G.z_dim ({self.G.z_dim})")

    dontcare_hint = " or model.contain_dontcare_label=true (a channel for them, as NVlabs/SPADE's option)"

    def label_ids(self) -> int:
        return self.num_label_channels

    @property
    def vgg_loss(self) -> nn.Module | None:
        if self._vgg is not None and next(self._vgg.parameters()).device != self.device:
            self._vgg.to(self.device)
        return self._vgg

    # ------------------------------------------------------------------------------------------------- inputs
    def semantics(self, batch: dict) -> torch.Tensor:
        """One-hot label map [+ dont-care channel] [+ instance edge map]: the generator's and discriminator's input."""
        sem = one_hot(batch["label"], self.num_label_channels, batch.get("path"))
        if self.hparams.use_instance:
            if "instance" not in batch:
                raise DataError("model.use_instance=true needs instance maps: set data.instance_dir")
            sem = torch.cat([sem, instance_edges(batch["instance"])], 1)
        return sem

    # ---------------------------------------------------------------------------------------------- generation
    def encode_style(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Style image(s) in [-1, 1] -> (mu, logvar) of z."""
        if self.E is None:
            raise UserError(
                "this SPADE model has no style encoder (train with model.E and model.G.use_vae=true)"
            )
        return self.E(image)

    def forward(self, semantics: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """One-hot semantics -> image; with the encoder, z ~ N(0, I) unless given (a style)."""
        return self.G(semantics, z)

    def generate(self, batch: dict, z: torch.Tensor | None = None, style: str = "encode") -> torch.Tensor:
        """Evaluation: with the encoder, the style comes from the batch's real image (`style="encode"`, mu) or is
        sampled (`style="random"`); without it the generator is deterministic."""
        sem = self.semantics(batch)
        if self.E is not None and z is None and style == "encode":
            z, _ = self.encode_style(batch["image"])
        return self.G(sem, z)

    @torch.no_grad()
    def sample_styles(
        self, label: torch.Tensor, n: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Multimodal synthesis: `n` random styles for each label map -> (n, B, 3, H, W)."""
        if self.E is None:
            raise UserError("random styles need the style encoder (model.E, model.G.use_vae=true)")
        sem = self.semantics({"label": label})
        z = torch.randn(n, label.shape[0], self.G.z_dim, generator=generator).to(sem.device, sem.dtype)
        return torch.stack([self.G(sem, z[i]) for i in range(n)])

    @torch.no_grad()
    def transfer_style(self, label: torch.Tensor, style_image: torch.Tensor) -> torch.Tensor:
        """Paint `label` maps in the style encoded from `style_image` (one image for all, or one per map)."""
        mu, _ = self.encode_style(style_image)
        if mu.shape[0] == 1 and label.shape[0] > 1:
            mu = mu.expand(label.shape[0], -1)
        return self.G(self.semantics({"label": label}), mu)

    def _generate_train(self, sem: torch.Tensor, real: torch.Tensor, with_kld: bool):
        z, kld = None, None
        if self.E is not None:
            mu, logvar = self.E(real)
            z = mu + torch.randn_like(logvar) * torch.exp(0.5 * logvar)  # reparameterisation trick
            if with_kld:
                kld = kl_divergence(mu, logvar) * self.hparams.lambda_kld
        return self.G(sem, z), kld

    def discriminate(self, sem: torch.Tensor, fake: torch.Tensor, real: torch.Tensor):
        """Fake and real go through D in one batch (same instance-norm/spectral-norm pass), split after."""
        both = torch.cat([torch.cat([sem, fake.to(sem.dtype)], 1), torch.cat([sem, real], 1)], 0)
        out = self.D(both)
        n = fake.shape[0]
        return [[f[:n] for f in scale] for scale in out], [[f[n:] for f in scale] for scale in out]

    # ------------------------------------------------------------------------------------------------ training
    def step_inputs(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"sem": self.semantics(batch), "real": batch["image"]}

    def generator_losses(self, sem: torch.Tensor, real: torch.Tensor) -> tuple[Losses, Losses]:
        hp = self.hparams
        fake, kld = self._generate_train(sem, real, with_kld=True)
        pred_fake, pred_real = self.discriminate(sem, fake, real)
        losses = {"G_GAN": self.gan_loss(pred_fake, True, for_discriminator=False)}
        if hp.lambda_feat > 0:
            losses["G_feat"] = self.feat_loss(pred_fake, pred_real) * hp.lambda_feat
        if hp.lambda_vgg > 0:
            losses["G_VGG"] = self.vgg_loss(fake, real) * hp.lambda_vgg
        if kld is not None:
            losses["KLD"] = kld
        return losses, {}  # the D step draws its own fake

    def discriminator_losses(self, sem: torch.Tensor, real: torch.Tensor) -> Losses:
        with torch.no_grad():  # the reference draws a fresh fake from the just-updated generator
            fake, _ = self._generate_train(sem, real, with_kld=False)
        pred_fake, pred_real = self.discriminate(sem, fake.detach(), real)
        return {"D_fake": self.gan_loss(pred_fake, False), "D_real": self.gan_loss(pred_real, True)}

    @torch.no_grad()
    def sample_images(self, batch: dict) -> dict[str, torch.Tensor]:
        """label | generated | real; with the encoder, generated uses the real image's style, then two random ones."""
        columns = super().sample_images(batch)
        if self.E is not None:
            g = torch.Generator().manual_seed(self.hparams.seed)
            styles = self.sample_styles(batch["label"], 2, generator=g)
            columns = {
                "label": columns["label"],
                "generated": columns["generated"],
                "random_style_1": styles[0],
                "random_style_2": styles[1],
                "real": columns["real"],
            }
        return columns
