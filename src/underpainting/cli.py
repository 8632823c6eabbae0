"""Console scripts (`[project.scripts]` in pyproject.toml): the Hydra apps on the packaged configs, and the rest.

`underpainting-train` and `underpainting-infer` compose `pkg://underpainting.conf`: the repository's `conf/`, shipped
inside the package. The user config folder (`$UNDERPAINTING_CONFIG_DIR`, else `./underpainting_conf` when it exists)
is added to the search path (Hydra's `--config-dir`): its files add options to the groups (`experiment/mine.yaml`,
`data/my_photos.yaml`) and its `local/default.yaml` (`# @package _global_`) is applied last, over everything
(lightning-hydra-template's `local/` idea). Packaged files of the same name keep precedence: use a new name.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

from underpainting.config.compose import user_config_dir
from underpainting.errors import UserError, exit_on_user_error


def _with_user_config(argv: list[str]) -> list[str]:
    if any(a in ("--config-dir", "-cd") or a.startswith(("--config-dir=", "-cd=")) for a in argv):
        return argv  # an explicit --config-dir wins
    user = user_config_dir()
    return argv if user is None else ["--config-dir", str(user), *argv]


def _hydra_app(config_name: str, task: Callable) -> None:
    import hydra

    sys.argv = [sys.argv[0], *_with_user_config(sys.argv[1:])]
    hydra.main(version_base="1.3", config_path="pkg://underpainting.conf", config_name=config_name)(task)()


@exit_on_user_error
def train() -> None:
    """`underpainting-train [overrides]` = `python train.py [overrides]` from anywhere."""
    from underpainting.train import main

    _hydra_app("train", main)


@exit_on_user_error
def infer() -> None:
    """`underpainting-infer [overrides]` = `python infer.py [overrides]` from anywhere."""
    from underpainting.infer import main

    _hydra_app("infer", main)


@exit_on_user_error
def zoo() -> int:
    """`underpainting-zoo ...` = `python -m underpainting.zoo ...`, when this install has the zoo package."""
    try:
        module = importlib.import_module("underpainting.zoo.__main__")
    except ModuleNotFoundError as err:
        if err.name not in ("underpainting.zoo", "underpainting.zoo.__main__"):
            raise
        raise UserError("this installation has no underpainting.zoo (published checkpoints)") from None
    return module.main()
