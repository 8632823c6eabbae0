"""Shared fixtures: the real Hydra configs composed for tests, tiny and offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED = ROOT.parent / "shared"

# Tiny overrides that make any CycleGAN config train in seconds on 2 CPU cores.
TINY_CYCLEGAN = [
    "data=synthetic",
    "data.image_size=32",
    "data.num_train=8",
    "data.num_val=2",
    "data.batch_size=2",
    "data.num_workers=0",
    "model.G_AB.ngf=8",
    "model.G_AB.n_blocks=1",
    "model.D_A.ndf=8",
    "logger=none",
    "callbacks.progress_bar=null",
]


def compose_train(overrides: list[str], output_dir: Path, config_name: str = "train") -> DictConfig:
    """Compose `conf/<config_name>.yaml` as `python train.py <overrides>` would, writing into `output_dir`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.root_dir = str(ROOT)
        del cfg.hydra
    GlobalHydra.instance().clear()
    return cfg


@pytest.fixture
def make_cfg(tmp_path):
    """`make_cfg([...overrides])` -> a composed train config whose outputs go to a fresh temporary folder."""
    return lambda overrides, config_name="train": compose_train(overrides, tmp_path, config_name)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (real data and weights live there on the development machine)")
    return SHARED
