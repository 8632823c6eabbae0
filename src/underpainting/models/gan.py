"""The base of the adversarial modules (CycleGAN, SPADE, pix2pix): what every GAN here trains the same way.

Per batch one generator (G) step and one discriminator (D) step, in the model's `update_order`, by manual
optimisation: the other side frozen (`toggled_optimizer`), the generator weight average updated after the G step.
A step's losses are a dict of named, already weighted terms whose sum is the objective (imaginaire's
`trainers/base.py`); every term is logged as `train/<term>`, the G objective as `train/G_total`, the learning rates
as `lr/G` and `lr/D`. The same dict goes back to Lightning for the divergence guard. The run options every GAN
takes (`model.seed`, `model.ema_decay`, `model.compile*`) are one config node, `conf/model/gan/base.yaml`.

A model names its networks by side (the G side is what `optimizer_G` trains, the averages follow and export writes)
and keeps what is its own: `update_order`, `step_inputs`, `generator_losses`, `discriminator_losses`,
`log_evaluation` (validation and test numbers), samples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import ClassVar, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from underpainting.models.compile import CompiledNetworks
from underpainting.models.ema import AveragedWeights, GeneratorEMA, adapt_checkpoint
from underpainting.models.image_pool import ImagePool
from underpainting.models.schedules import step_after_last_batch
from underpainting.runtime.distributed import of_every_rank
from underpainting.runtime.rng import RNGState, rank_seed, seed_rank

log = logging.getLogger(__name__)

Losses = dict[str, torch.Tensor]


class GAN(CompiledNetworks, AveragedWeights, pl.LightningModule):
    """Adversarial training with manual optimisation; subclasses supply the networks and the losses.

    Args:
        generators: the G side by attribute name (None: absent, e.g. SPADE without its style encoder).
        discriminators: the D side by attribute name.
        optimizer_G, optimizer_D: partials over each side's parameters (`_partial_: true` in the config).
        scheduler: an optional per-epoch scheduler partial, one per optimizer.
        seed: the model's own random draws (image pools, seeded test-time dropout, sample styles).
        ema_decay: generator weight average for evaluation, samples and export (`models/ema.py`); None = off.
        compile, compile_mode, compile_backend: torch.compile of the networks in place (`models/compile.py`).
    """

    update_order: ClassVar[tuple[Literal["G", "D"], ...]] = ("G", "D")
    # Constructor arguments that are objects (label sets, loss factories): kept out of `hparams` like the networks.
    not_hyperparameters: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        generators: Mapping[str, nn.Module | None],
        discriminators: Mapping[str, nn.Module],
        optimizer_G: Callable[..., Optimizer],
        optimizer_D: Callable[..., Optimizer],
        scheduler: Callable[..., LRScheduler] | None = None,
        *,
        seed: int = 0,
        ema_decay: float | None = None,
        compile: bool = False,
        compile_mode: str = "default",
        compile_backend: str = "inductor",
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # hparams: the plain-valued constructor arguments of the whole chain (this one's and the model's)
        objects = ["generators", "discriminators", "optimizer_G", "optimizer_D", "scheduler"]
        self.save_hyperparameters(ignore=[*objects, *generators, *discriminators, *self.not_hyperparameters])
        for name, net in {**generators, **discriminators}.items():
            setattr(self, name, net)
        self.exportable = tuple(name for name, net in generators.items() if net is not None)
        self.discriminators = tuple(discriminators)
        self.optimizer_G, self.optimizer_D, self.scheduler = optimizer_G, optimizer_D, scheduler
        self.rng = RNGState()
        nets = {name: getattr(self, name) for name in self.exportable}
        self.ema = GeneratorEMA(nets, ema_decay) if ema_decay else None
        if self.ema is not None:  # DDP broadcasts every buffer from rank 0 before each forward (~91 MB for
            # CycleGAN's averages, ~370 MB for SPADE's): every rank's averages follow the same synced weights, and
            # rank 0's are the ones saved
            ignored = [f"ema.{name}" for name, _ in self.ema.named_buffers()]
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(self, ignored)
        self.init_compile(compile, compile_mode, compile_backend)

    # ------------------------------------------------------------------------------------- what a model supplies
    def step_inputs(self, batch: dict) -> dict[str, torch.Tensor]:
        """The tensors both steps read, by the loss methods' argument names; batch first (the first one gives the
        logged batch size)."""
        raise NotImplementedError

    def generator_losses(self, **inputs: torch.Tensor) -> tuple[Losses, dict[str, torch.Tensor]]:
        """Named terms of the G objective, and the tensors a later D step reads (handed on detached)."""
        raise NotImplementedError

    def discriminator_losses(self, **inputs: torch.Tensor) -> Losses:
        """Named terms of the D objective."""
        raise NotImplementedError

    def log_evaluation(self, batch: dict, stage: str) -> None:
        """Log the model's `<stage>/...` numbers of one validation ("val") or test ("test") batch."""
        raise NotImplementedError

    def discriminator_objective(self, losses: Losses) -> torch.Tensor:
        return sum(losses.values())

    def image_pools(self) -> dict[str, ImagePool]:
        """Histories of fakes kept in checkpoints (CycleGAN's), by name."""
        return {}

    def progress_bar(self, logs: Losses) -> Losses:
        """Values shown in the progress bar besides Lightning's own."""
        return {}

    def compiled_networks(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name) for name in (*self.exportable, *self.discriminators)}

    # ------------------------------------------------------------------------------------------------- training
    def configure_optimizers(self):
        opt_g = self.optimizer_G(self._parameters_of(self.exportable))
        opt_d = self.optimizer_D(self._parameters_of(self.discriminators))
        if self.scheduler is None:
            return [opt_g, opt_d]
        return [opt_g, opt_d], [self.scheduler(opt_g), self.scheduler(opt_d)]

    def _parameters_of(self, names: tuple[str, ...]) -> list[nn.Parameter]:
        return [p for name in names for p in getattr(self, name).parameters()]

    def training_step(self, batch: dict, batch_idx: int) -> Losses:
        self.rng.restore_if_pending()
        opt_g, opt_d = self.optimizers()
        inputs = self.step_inputs(batch)
        g_losses: Losses = {}
        d_losses: Losses = {}
        for side in self.update_order:
            if side == "G":
                with self.toggled_optimizer(opt_g):  # D frozen while G learns to fool it
                    g_losses, handed_on = self.generator_losses(**inputs)
                    total_g = sum(g_losses.values())
                    self._optimise(opt_g, total_g)
                if self.ema is not None:
                    self.ema.update()
                inputs = {**inputs, **{k: v.detach() for k, v in handed_on.items()}}
            else:
                with self.toggled_optimizer(opt_d):
                    d_losses = self.discriminator_losses(**inputs)
                    self._optimise(opt_d, self.discriminator_objective(d_losses))
        logs = self._log_step({**g_losses, **d_losses}, total_g, len(next(iter(inputs.values()))))
        step_after_last_batch(self, batch_idx)
        return logs  # read by the divergence guard (on the device, no host sync)

    def _optimise(self, opt: LightningOptimizer, objective: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        self.manual_backward(objective)
        opt.step()

    def _log_step(self, losses: Losses, total_g: torch.Tensor, n: int) -> Losses:
        opt_g, opt_d = self.optimizers()
        logs = {f"train/{k}": v.detach() for k, v in losses.items()}
        logs["train/G_total"] = total_g.detach()
        self.log_dict(logs, batch_size=n)
        if shown := self.progress_bar(logs):
            self.log_dict(shown, prog_bar=True, batch_size=n)
        # as host tensors: Lightning turns a Python number into a tensor on the module's device, a blocking copy (and
        # a wait for the GPU's queue) at every step
        lrs = {"lr/G": opt_g.param_groups[0]["lr"], "lr/D": opt_d.param_groups[0]["lr"]}
        self.log_dict(
            {k: v if torch.is_tensor(v) else torch.tensor(float(v)) for k, v in lrs.items()}, batch_size=n
        )
        return logs

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.log_evaluation(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.log_evaluation(batch, "test")

    def configure_model(self) -> None:
        """After the networks are built (identical weights on every rank), before a checkpoint is restored: each
        DDP rank its own random streams - global (dropout, VAE noise) and the image pools' - not rank 0's."""
        super().configure_model()  # compile
        if (rank := self.global_rank) > 0:
            seed_rank(rank)
            for i, pool in enumerate(self.image_pools().values()):
                pool.generator.manual_seed(rank_seed(self.hparams.seed + i, rank))

    # ---------------------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if pools := self.image_pools():
            checkpoint["image_pools"] = {name: pool.state_dict() for name, pool in pools.items()}
            if (by_rank := of_every_rank(checkpoint["image_pools"])) is not None:
                checkpoint["image_pools_by_rank"] = by_rank  # [0] is the same as image_pools
        checkpoint["rng"] = self.rng.capture()
        if (by_rank := of_every_rank(checkpoint["rng"])) is not None:
            checkpoint["rng_by_rank"] = by_rank  # each rank's dropout and noise streams; [0] is `rng`
        if self.ema is not None:
            self.ema.fix_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if note := adapt_checkpoint(checkpoint["state_dict"], self.ema, self.exportable):
            log.info(note)
        states = checkpoint.get("image_pools")
        if by_rank := checkpoint.get("image_pools_by_rank"):  # each rank its own (other rank counts wrap)
            states = by_rank[self.global_rank % len(by_rank)]
        if states is not None:  # on the module's device; `query` follows the fakes' device after that
            for name, pool in self.image_pools().items():
                pool.load_state_dict(states[name], device=self.device)
        if note := self.rng.for_rank(checkpoint, self.global_rank):
            log.info(note)
