"""Every config group option and every experiment composes, and builds the objects it names."""

from __future__ import annotations

import re

import lightning.pytorch as pl
import pytest
from hydra.utils import instantiate

from tests.conftest import CONF
from underpainting.config.checks import check_values
from underpainting.config.sizes import check_training_size
from underpainting.errors import ConfigError

GROUPS = ["data", "model", "trainer", "logger", "callbacks", "debug", "experiment"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(make_cfg, group, option):
    cfg = make_cfg([f"{group}={option}"])
    assert cfg[group if group not in ("debug", "experiment") else "trainer"] is not None


def test_default_config_reads_like_the_cyclegan_paper(make_cfg):
    cfg = make_cfg([])
    m = cfg.model
    assert (m.G_AB.ngf, m.G_AB.n_blocks, m.G_AB.norm, m.D_A.n_layers, m.D_A.ndf) == (64, 9, "instance", 3, 64)
    assert (m.lambda_A, m.lambda_B, m.lambda_identity, m.pool_size, m.gan_mode) == (
        10.0,
        10.0,
        0.5,
        50,
        "lsgan",
    )
    assert (m.optimizer_G.lr, list(m.optimizer_G.betas)) == (2e-4, [0.5, 0.999])
    assert m.scheduler.n_epochs + m.scheduler.n_epochs_decay == cfg.trainer.max_epochs == 200


def test_user_command_composes_module_and_datamodule(make_cfg):
    cfg = make_cfg(["model=cyclegan", "data=vangogh_landscapes"])
    assert isinstance(instantiate(cfg.model), pl.LightningModule)
    dm = instantiate(cfg.data)
    assert isinstance(dm, pl.LightningDataModule)
    assert (dm.preprocess.load_size, dm.preprocess.crop_size, dm.batch_size) == (286, 256, 1)


EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_builds_its_model_and_data(make_cfg, experiment):
    cfg = make_cfg([f"experiment={experiment}"])
    check_values(cfg)  # the composition-time checks pass every shipped experiment ...
    check_training_size(model := instantiate(cfg.model), cfg)  # ... and its crops fit its networks
    assert isinstance(model, pl.LightningModule)
    assert isinstance(instantiate(cfg.data), pl.LightningDataModule)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert isinstance(trainer, pl.Trainer)


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["model=cyclegan"], None),  # the paper's 256 px
        (["model=cyclegan", "data=vangogh_landscapes"], None),
        (["model=pix2pix", "data=synthetic_pairs"], None),
        (["model=spade", "data=synthetic_pairs"], None),
        (["model=cyclegan", "data.image_size=30"], "G_AB and G_BA (ResnetGenerator) cannot take 30x30 px"),
        (["model=spade", "data=synthetic_pairs", "data.image_size=48"], "must be a multiple of 32"),
        (
            ["model=pix2pix", "data=synthetic_pairs", "data.image_size=64"],
            "G (UnetGenerator) cannot take 64x64",
        ),
        (["model=cyclegan", "data=vangogh_landscapes", "data.preprocess.crop_size=250"], "248 or 252"),
    ],
)
def test_the_crop_size_is_checked_against_every_network(make_cfg, overrides, says):
    cfg = make_cfg(overrides)
    model = instantiate(cfg.model)
    if says is None:
        check_training_size(model, cfg)
    else:
        with pytest.raises(ConfigError, match=re.escape(says) if "(" in says else says):
            check_training_size(model, cfg)


def test_numbers_no_run_can_use_are_named(make_cfg):
    cfg = make_cfg(["data.batch_size=0", "model.optimizer_G.lr=-0.1", "trainer.max_epochs=-2"])
    with pytest.raises(ConfigError) as e:
        check_values(cfg)
    assert str(e.value).startswith(
        "`data.batch_size`=0 must be 1 or more; `model.optimizer_G.lr`=-0.1 must be 0 or more; "
        "`trainer.max_epochs`=-2 must be -1 or more."
    )
    check_values(make_cfg(["model.optimizer_G.lr=0", "trainer.max_epochs=-1"]))  # frozen, unlimited: allowed


def test_several_loggers_at_once(make_cfg):
    cfg = make_cfg(["logger=many_loggers"])
    assert set(cfg.logger) == {"wandb", "tensorboard", "csv"}
