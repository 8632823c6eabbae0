"""Train a model: `python train.py model=cyclegan data=vangogh_landscapes`, `python train.py experiment=quickstart`."""

import hydra
from omegaconf import DictConfig

from underpainting.train import main


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def train(cfg: DictConfig) -> float | None:
    return main(cfg)


if __name__ == "__main__":
    train()
