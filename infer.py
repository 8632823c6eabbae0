"""Paint sketches: `python infer.py input=examples/sketches stage1.checkpoint=... stage2.cyclegan.checkpoint=...`."""

import hydra
from omegaconf import DictConfig

from underpainting.infer import main


@hydra.main(version_base="1.3", config_path="conf", config_name="infer")
def infer(cfg: DictConfig) -> int:
    return main(cfg)


if __name__ == "__main__":
    infer()
