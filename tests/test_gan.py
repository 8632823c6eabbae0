"""The GAN base (models/gan.py): CycleGAN, SPADE and pix2pix train through one step, one optimizer setup, one set
of checkpoint hooks and one config node for the run options; each model keeps its own losses and update order."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
import yaml
from hydra.utils import instantiate

from tests.conftest import CONF, TINY_CYCLEGAN
from tests.test_pix2pix import TINY_PIX2PIX
from tests.test_spade_training import TINY_SPADE, WITH_ENCODER
from underpainting.config.checks import build
from underpainting.errors import UserError
from underpainting.models.cyclegan import CycleGAN
from underpainting.models.gan import GAN
from underpainting.models.pix2pix import Pix2Pix
from underpainting.models.spade import SPADEModel
from underpainting.train import run

pytestmark = pytest.mark.usefixtures("one_thread")

SHARED = ("seed", "ema_decay", "compile", "compile_mode", "compile_backend")
MODELS = {  # model -> (overrides, the G terms, the D terms, the order of the optimizer steps)
    "cyclegan": (
        TINY_CYCLEGAN,
        {"G_AB", "G_BA", "cycle_A", "cycle_B", "idt_A", "idt_B"},
        {"D_A", "D_B"},
        ["G", "ema", "D"],
    ),
    "spade": (
        [*TINY_SPADE, *WITH_ENCODER],
        {"G_GAN", "G_feat", "G_VGG", "KLD"},
        {"D_fake", "D_real"},
        ["G", "ema", "D"],
    ),
    "pix2pix": (TINY_PIX2PIX, {"G_GAN", "G_L1"}, {"D_fake", "D_real"}, ["D", "G", "ema"]),
}


def test_the_three_models_share_the_base_and_keep_only_their_own():
    shared = {
        "training_step",
        "configure_optimizers",
        "validation_step",
        "on_save_checkpoint",
        "on_load_checkpoint",
    }
    for cls in (CycleGAN, SPADEModel, Pix2Pix):
        assert issubclass(cls, GAN)
        own = {name for klass in cls.__mro__[: cls.__mro__.index(GAN)] for name in vars(klass)}
        assert not own & shared, (cls.__name__, own & shared)
    assert Pix2Pix.update_order == ("D", "G") and CycleGAN.update_order == SPADEModel.update_order == (
        "G",
        "D",
    )


@pytest.mark.parametrize("name", ["cyclegan", "spade", "pix2pix"])
def test_the_run_options_are_one_config_node(make_cfg, name):
    """`model.seed`, `model.ema_decay`, `model.compile*` come from conf/model/gan/base.yaml into every GAN config, keep
    their documented keys, and reach the base (hparams, the EMA, the compile options)."""
    own = yaml.safe_load((CONF / "model" / f"{name}.yaml").read_text())
    assert not set(SHARED) & set(own) and "gan/base@_here_" in own["defaults"]
    overrides = MODELS[name][0]
    cfg = make_cfg(overrides)
    assert (cfg.model.ema_decay, cfg.model.seed, cfg.model.compile) == (None, cfg.seed, False)
    assert (cfg.model.compile_mode, cfg.model.compile_backend) == ("default", "inductor")
    model = instantiate(
        make_cfg([*overrides, "model.ema_decay=0.99", "model.seed=7", "model.compile=true"]).model
    )
    assert {k: model.hparams[k] for k in SHARED} == {
        "seed": 7,
        "ema_decay": 0.99,
        "compile": True,
        "compile_mode": "default",
        "compile_backend": "inductor",
    }
    assert model.ema is not None and set(model.ema.shadow) == set(model.exportable)
    assert model._compile_options == {"mode": "default", "backend": "inductor"}
    assert not {"G", "D", "E", "G_AB", "labels", "vgg", "optimizer_G", "scheduler"} & set(model.hparams)


def test_the_optimizers_take_each_side_of_the_model(make_cfg):
    model = instantiate(make_cfg([*TINY_SPADE, *WITH_ENCODER]).model)
    opt_g, opt_d = model.configure_optimizers()
    g_side = [*model.G.parameters(), *model.E.parameters()]
    assert [id(p) for p in opt_g.param_groups[0]["params"]] == [id(p) for p in g_side]
    assert [id(p) for p in opt_d.param_groups[0]["params"]] == [id(p) for p in model.D.parameters()]
    assert (opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"]) == (1e-4, 4e-4)  # TTUR


class StepOrder(pl.Callback):
    """The order of the optimizer steps and the weight-average update within each batch; the logged metrics and
    what training_step returned."""

    def __init__(self) -> None:
        self.events: list[list[str]] = []
        self.logged: list[dict[str, float]] = []
        self.outputs: list[dict] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.events.append([])
        if pl_module.ema is not None and not hasattr(pl_module.ema, "_recorded"):
            update = pl_module.ema.update
            pl_module.ema._recorded = True
            pl_module.ema.update = lambda: (self.events[-1].append("ema"), update())

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.events[-1].append("GD"[trainer.optimizers.index(optimizer)])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.logged.append({k: float(v) for k, v in trainer.callback_metrics.items()})
        self.outputs.append(outputs)


@pytest.mark.parametrize("name", ["cyclegan", "spade", "pix2pix"])
def test_one_step_in_the_models_order_logs_every_named_term(make_cfg, name):
    overrides, g_terms, d_terms, order = MODELS[name]
    probe = StepOrder()
    cfg = make_cfg(
        [
            *overrides,
            "model.ema_decay=0.9",
            "trainer.max_steps=4",
            "trainer.log_every_n_steps=1",
            "callbacks.sample_grid.every_n_steps=0",
        ]
    )
    run(cfg, extra_callbacks=[probe])
    assert probe.events == [order, order], "G and D step once a batch, in the model's order, EMA after G"
    terms = {f"train/{k}" for k in g_terms | d_terms}
    logged, returned = probe.logged[-1], probe.outputs[-1]
    assert terms | {"train/G_total", "lr/G", "lr/D"} <= set(logged)
    assert set(returned) == terms | {"train/G_total"}, "the divergence guard reads every term"
    assert all(torch.isfinite(v) and v.numel() == 1 for v in returned.values())
    g_sum = sum(logged[f"train/{k}"] for k in g_terms)
    assert logged["train/G_total"] == pytest.approx(g_sum, rel=1e-5)
    if name == "cyclegan":
        assert logged["train/cycle"] == pytest.approx(logged["train/cycle_A"] + logged["train/cycle_B"])


def test_test_protocol_and_input_mode_are_user_errors_naming_the_key(make_cfg):
    for key, value in (("test_protocol", "train"), ("input_mode", "rgb")):
        with pytest.raises(UserError, match=f"{key} must be"):
            build(make_cfg([*TINY_PIX2PIX, f"model.{key}={value}"]).model, "model")
    # the old spelling, as checkpoints written before it changed record it, still builds the 3-channel input
    old = build(make_cfg([*TINY_PIX2PIX, "model.input_mode=color"]).model, "model")
    assert old.hparams.input_mode == "colour" and old.input_nc == 3


class LoggedValues(pl.Callback):
    """Every value the module hands to `log` / `log_dict` in its training steps."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        log, log_dict = pl_module.log, pl_module.log_dict

        def spy_log(name, value, *args, **kwargs):
            self.values[name] = value
            return log(name, value, *args, **kwargs)

        def spy_log_dict(values, *args, **kwargs):
            self.values.update(values)
            return log_dict(values, *args, **kwargs)

        pl_module.log, pl_module.log_dict = spy_log, spy_log_dict


def test_a_training_step_logs_no_python_numbers(make_cfg):
    """Lightning turns a logged Python number into a tensor on the module's device: on a GPU a blocking copy that
    waits for the queue, at every step. Losses stay on the device; the learning rates go as host tensors."""
    spy = LoggedValues()
    run(make_cfg([*TINY_CYCLEGAN, "trainer.max_steps=2", "callbacks.sample_grid.every_n_steps=0"]), [spy])
    assert {"lr/G", "lr/D", "train/G_total"} <= set(spy.values)
    numbers = {k: v for k, v in spy.values.items() if not torch.is_tensor(v)}
    assert not numbers
    assert spy.values["lr/G"].device.type == "cpu" and float(spy.values["lr/G"]) == pytest.approx(2e-4)
