"""Optimisation-based neural style transfer as a tracked training run.

Gatys, Ecker & Bethge 2016 ("Image Style Transfer Using Convolutional Neural Networks") with the controls of
Gatys, Ecker, Bethge, Hertzmann & Shechtman 2017 ("Controlling Perceptual Factors in Neural Style Transfer"):
spatial guidance by label maps (Sec. 4), colour control (Sec. 5) and coarse-to-fine scale control (Sec. 6).

The only parameter of `NeuralStyleTransfer` is the image; what it minimises is an `NSTObjective`
(`models/losses/nst.py`, config node `model.objective`). Each Trainer step is one optimiser step (one L-BFGS
iteration, i.e. one loss evaluation, as in pystiche), so progress bars, loggers, checkpoints and sweeps work as for
the GANs. `optimise()` runs the same loop without a Trainer (tests, benchmarks, notebooks, the infer stages).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from underpainting.data.colour import luminance_image, match_colour, match_luminance, transfer_luminance
from underpainting.data.correspondences import REGION_FALLBACKS, borrow_regions
from underpainting.data.images import load_rgb, pil_to_tensor
from underpainting.data.nst import NSTProblem, resize_labels, resize_to_edge
from underpainting.errors import UserError
from underpainting.features.vgg import VGGFeatures
from underpainting.models.compile import CompiledNetworks
from underpainting.models.losses.nst import NSTObjective
from underpainting.models.losses.targets import Targets
from underpainting.models.pyramid import CoarseToFine

log = logging.getLogger(__name__)

COLOUR_MODES = ("none", "luminance", "match")
GRAD_TARGET = 0.01  # largest |d objective / d pixel| at a level's start, pixels in [-1, 1] (see `_step`)


class NeuralStyleTransfer(CoarseToFine, CompiledNetworks, pl.LightningModule):
    """Gatys-style image optimisation with semantic, colour and scale control, driven by the Trainer.

    Args:
        vgg: partial `VGGFeatures` (arch, weights, convention, pooling); the layers are the objective's, and it is
            built (weights loaded) on first use, at Trainer setup or `attach`.
        optimizer: partial optimiser over the image (L-BFGS by default; Adam works too).
        objective: partial `NSTObjective` (its terms, layers and weights); `semantic` is filled in here.
        semantic: use the label maps (Gatys et al. 2017, Sec. 4.1): guided terms in the objective, and region
            correspondences (`region_fallback`) for content classes the styles lack.
        region_fallback: 'borrow' (a class the style lacks borrows one it has, `labels.borrow`, logged) | 'global'
            (it is painted from the whole painting).
        normalise: rescale the objective so its first gradient peaks at GRAD_TARGET per pixel (see `_step`).
        colour: 'none' | 'luminance' (transfer luminance only, keep the content's colours, Sec. 5.1) |
            'match' (recolour the style to the content's colour statistics first, Sec. 5.2).
        colour_match: method for colour='match': 'pca' | 'chol' | 'sym' | 'histogram'.
        init: 'content' | 'noise' | path to an image.
        style_scale: style long side = level edge x style_scale; null keeps the style images at their own size.
        seed: seed of the noise initialisation.
        compile / compile_mode / compile_backend: torch.compile the VGG in place (`models/compile.py`).
    """

    result_name = "nst"  # <run_dir>/nst/final.png

    def __init__(
        self,
        vgg: Callable[..., VGGFeatures],
        optimizer: Callable[..., torch.optim.Optimizer],
        objective: Callable[..., NSTObjective] = NSTObjective,
        semantic: bool = False,
        region_fallback: str = "borrow",
        normalise: bool = True,
        colour: str = "none",
        colour_match: str = "pca",
        init: str = "content",
        style_scale: float | None = 1.0,
        seed: int = 0,
        compile: bool = False,
        compile_mode: str = "default",
        compile_backend: str = "inductor",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["vgg", "optimizer", "objective"])
        self.automatic_optimization = False
        self.strict_loading = False  # checkpoints leave out the frozen VGG (see on_save_checkpoint)
        if colour not in COLOUR_MODES:
            raise UserError(f"`model.colour` must be one of {', '.join(COLOUR_MODES)}, got {colour!r}")
        if region_fallback not in REGION_FALLBACKS:
            raise UserError(
                f"`model.region_fallback` must be one of {', '.join(REGION_FALLBACKS)}, got {region_fallback!r}"
            )
        # The VGG (and its weights) is built on first use (`attach`, i.e. Trainer setup), so composing and
        # instantiating configs never touches weight files; a missing file still stops the run before step 1.
        self.objective = objective(semantic=semantic)
        self._make_vgg = vgg
        self.normalise = normalise
        self.loss_scale: float | None = None
        self.optimizer_factory = optimizer
        self.colour, self.colour_match = colour, colour_match
        self.init, self.style_scale, self.seed = init, style_scale, seed
        self.image = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.problem: NSTProblem | None = None
        self.pyramid: list[dict[str, int]] = []
        self.level = -1
        self._inputs: tuple[torch.Tensor, list[torch.Tensor]] | None = None
        self._level_images = Targets()  # buffers: built in `setup`, before Lightning moves the module
        self.last_losses: dict[str, float] = {}
        self.init_compile(compile, compile_mode, compile_backend)

    def compiled_networks(self) -> dict[str, nn.Module]:
        return {"vgg": self.objective.vgg} if self.objective.vgg is not None else {}  # built in setup

    # ----------------------------------------------------------------- problem and pyramid levels
    def attach(self, problem: NSTProblem, pyramid: Sequence[Mapping[str, int]]) -> None:
        """Set the inputs and schedule and enter the first level (done by `setup` from the datamodule)."""
        if self.objective.vgg is None:
            self.objective.use_features(self._make_vgg(layers=self.objective.layers).to(self.image.device))
        self.problem = self.borrow_regions(problem)
        self.pyramid = [{"edge": int(p["edge"]), "steps": int(p["steps"])} for p in pyramid]
        content = problem.content.float()
        if self.colour == "luminance":
            styles = [match_luminance(s.float(), content) for s in problem.styles]
            content = luminance_image(content)
        elif self.colour == "match":
            styles = [match_colour(s.float(), content, self.colour_match) for s in problem.styles]
        else:
            styles = [s.float() for s in problem.styles]
        self._inputs = (content, styles)
        self.level = -1
        self.enter_level(0)

    def borrow_regions(self, problem: NSTProblem) -> NSTProblem:
        """The problem with content classes the styles lack relabelled to the classes they borrow (`labels.borrow`,
        `region_fallback`); `self.borrowed` records {class: borrowed class or None (whole painting)}."""
        self.borrowed: dict[int, int | None] = {}
        if not self.hparams.semantic or not problem.has_guides:
            return problem
        labels = problem.labels
        content_labels, self.borrowed = borrow_regions(
            problem.content_labels, problem.style_labels, labels.borrow if labels is not None else {},
            labels.names if labels is not None else None, self.hparams.region_fallback,
            self.objective.min_region_fraction,
        )  # fmt: skip
        return dataclasses.replace(problem, content_labels=content_labels)

    @torch.no_grad()
    def enter_level(self, level: int, image: torch.Tensor | None = None) -> None:
        """Resize inputs for `level`, recompute targets, and start the image from `image` (upsampled), the previous
        level's result, or the configured init (Gatys et al. 2017, Sec. 6: coarse-to-fine)."""
        assert self.problem is not None and self._inputs is not None, "call attach(problem, pyramid) first"
        device = self.image.device
        edge = self.pyramid[level]["edge"]
        content_in, styles_in = self._inputs
        content = resize_to_edge(content_in, edge).to(device)
        size = tuple(content.shape[-2:])
        styles = [
            (resize_to_edge(s, max(16, round(edge * self.style_scale))) if self.style_scale else s).to(device)
            for s in styles_in
        ]
        p = self.problem
        c_lab = resize_labels(p.content_labels, size).to(device) if p.content_labels is not None else None
        s_lab = [
            resize_labels(lab, tuple(s.shape[-2:])).to(device) if lab is not None else None
            for lab, s in zip(p.style_labels, styles, strict=True)
        ]
        self.objective.to(device)
        self.objective.prepare(content, styles, p.style_weights, c_lab, s_lab, p.num_classes)
        if image is None and self.level >= 0:
            image = self.image.detach()
        if image is not None:
            start = F.interpolate(image.float(), size=size, mode="bicubic", align_corners=False)
        elif self.init == "content":
            start = content.clone()
        elif self.init == "noise":
            g = torch.Generator().manual_seed(int(self.seed))  # white noise (Gatys et al. 2016)
            start = (torch.rand(1, 3, *size, generator=g) * 2 - 1).to(device)
        else:
            start = _resize_exact(pil_to_tensor(load_rgb(self.init))[None], size).to(device)
        self.image = nn.Parameter(start.contiguous())
        self.level = level
        self.loss_scale = None
        original = resize_to_edge(p.content.float(), edge).to(device)
        images = {"content": original, "style": p.styles[0].float().to(device)}
        if c_lab is not None and p.labels is not None:
            images["guide"] = p.labels.colourise(c_lab)
        self._level_images.set(images)
        log.info("NST level %d: %dx%d px, %d steps", level, size[1], size[0], self.pyramid[level]["steps"])

    def output(self) -> torch.Tensor:
        """The current result in [-1, 1], with the content's colours put back for luminance-only transfer."""
        image = self.image.detach().float().clamp(-1, 1)
        if self.colour == "luminance":
            image = transfer_luminance(image, self._level_images["content"])
        return image

    # ----------------------------------------------------------------- optimisation
    def _step(
        self, optimizer, backward: Callable[[torch.Tensor], None], step: int
    ) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            out = self.objective(self.image)
            if self.loss_scale is None:
                # L-BFGS without line search is not scale-invariant: its first step, and every step after it
                # rejects a curvature pair (y·s <= 1e-10), move by -lr·∇. Raw Caffe-scale losses (~1e8) then throw
                # the image far outside [-1, 1]; random-weight losses (~1e-6) never move it. So the optimised
                # objective is the total times a constant chosen at the level's first evaluation such that the
                # largest gradient entry is GRAD_TARGET (about one grey level).
                backward(out["total"])
                gmax = float(self.image.grad.abs().max()) if self.image.grad is not None else 0.0
                self.loss_scale = GRAD_TARGET / gmax if self.normalise and gmax > 0 else 1.0
                self.image.grad.mul_(self.loss_scale)
            else:
                backward(out["total"] * self.loss_scale)
            out["objective"] = out["total"] * self.loss_scale
            terms.update({k: v.detach() for k, v in out.items()})
            return out["objective"].detach()

        optimizer.step(closure=closure)
        return terms

    def setup(self, stage: str) -> None:
        if str(self.trainer.precision) == "16-mixed":
            raise UserError(
                "NST cannot use trainer.precision=16-mixed: fp16 loss scaling and L-BFGS do not mix (Lightning "
                "refuses them). Use trainer.precision=bf16-mixed or 32-true."
            )
        if self.problem is None:
            dm = self.trainer.datamodule
            if not hasattr(dm, "pyramid"):
                raise UserError(
                    f"model=nst needs its own data, not {type(dm).__name__}: add `data=nst data.content=<photo> "
                    "data.style=<painting>` (or use `experiment=nst_quickstart`, offline, procedural inputs)"
                )
            dm.setup(stage)
            self.attach(dm.problem, dm.pyramid)

    def training_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        opt = self.optimizers()
        terms = self._step(opt, self.manual_backward, self.global_step)
        self.last_losses = {k: float(v) for k, v in terms.items()}
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, prog_bar=False, on_step=True)
        self.log("train/loss", terms["total"], prog_bar=True, on_step=True)
        self.log("lr/image", float(opt.param_groups[0]["lr"]), on_step=True)
        self.log("nst/level", float(self.level), on_step=True)
        # The divergence guard checks the optimised (normalised) objective; the raw terms are Caffe-scale (~1e8).
        return {"train/objective": terms["objective"]}

    # ----------------------------------------------------------------- images out
    def sample_images(self, batch=None) -> dict[str, torch.Tensor]:
        """Columns for the sample grid: content, style, (content guide), current result, all at the result's size."""
        out = self.output()
        size = out.shape[-2:]
        cols = {"content": self._level_images["content"]}
        cols["style"] = F.interpolate(self._level_images["style"], size=size, mode="bilinear", antialias=True)
        if "guide" in self._level_images:
            cols["guide"] = self._level_images["guide"]
        cols["stylised"] = out
        return {k: v.clamp(-1, 1) for k, v in cols.items()}

    def eval_pairs(self, batch=None) -> dict[str, torch.Tensor]:
        out = self.output()
        style = F.interpolate(
            self._level_images["style"], size=out.shape[-2:], mode="bilinear", antialias=True
        )
        return {"generated": out, "reference": style.clamp(-1, 1), "source": self._level_images["content"]}

    # ----------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The frozen VGG is rebuilt from the config; keep checkpoints to the image and optimiser state.
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("objective.")
        }
        checkpoint["nst_level"] = self.level
        checkpoint["nst_loss_scale"] = self.loss_scale  # the L-BFGS history was built at this scale

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        image = checkpoint["state_dict"].get("image")
        if image is None:
            return
        if self.problem is not None:
            self.enter_level(int(checkpoint.get("nst_level", 0)), image=image.to(self.image.device))
            self.loss_scale = checkpoint.get("nst_loss_scale")
        else:
            self.image = nn.Parameter(torch.zeros_like(image))


def _resize_exact(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize an init image to exactly `size` (it need not share the content's aspect ratio)."""
    return F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)
