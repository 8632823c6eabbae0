"""Where configs come from (the packaged `conf/`, the user config folder), and a run's config composed in code as
`python train.py <overrides>` (or infer.py) composes it on the command line.

For callers that start a run themselves (the X-ray `separate` command, tests): the same packaged configs
(`underpainting.conf`, the repository's `conf/`), the Hydra run config set so that `HydraConfig.get()` works inside
`run(cfg)`, and the output folder given instead of Hydra's timestamped one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from underpainting.errors import ConfigError

USER_CONFIG_ENV = "UNDERPAINTING_CONFIG_DIR"
USER_CONFIG_DEFAULT = "underpainting_conf"


def user_config_dir() -> Path | None:
    """The user config folder, or None. A set `$UNDERPAINTING_CONFIG_DIR` must exist (a typo should not be silent)."""
    env = os.environ.get(USER_CONFIG_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise ConfigError(f"{USER_CONFIG_ENV}={env} is not a folder; create it or unset the variable")
        return path.resolve()
    path = Path(USER_CONFIG_DEFAULT)
    return path.resolve() if path.is_dir() else None


def conf_dir() -> Path:
    """The packaged Hydra configs (in a checkout: `conf/`, through the `src/underpainting/conf` link)."""
    import underpainting.conf

    return Path(underpainting.conf.__file__).parent


def compose_run(
    overrides: Sequence[str],
    output_dir: str | Path,
    config_name: str = "train",
    root_dir: str | Path | None = None,
) -> DictConfig:
    """`conf/<config_name>.yaml` with `overrides`, writing into `output_dir` (and `paths.root_dir`, when given)."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir())):
            cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        if root_dir is not None:
            cfg.paths.root_dir = str(root_dir)
        del cfg.hydra
    return cfg
