"""The page's Hydra configs: its own settings (`conf/app/`) and each job's infer config, composed from the packaged
`conf/` plus the user config folder exactly as `underpainting-infer` composes them (`underpainting.cli`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import yaml
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from underpainting.config.compose import user_config_dir
from underpainting.errors import UserError

CONFIG_MODULE = "underpainting.conf"


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def merge_overrides(base: Sequence[str], job: Sequence[str]) -> list[str]:
    """`base` then `job`, a job override replacing a base one of the same key (Hydra refuses a key twice)."""
    keys = {_key(o) for o in job}
    return [o for o in base if _key(o) not in keys] + list(job)


class Composer:
    """Composes configs under a lock (Hydra's global state is one per process; the page serves many threads).

    `overrides`: the app's command line: `app.*` set the page, the rest apply to every job's infer config."""

    def __init__(self, overrides: Sequence[str] = ()) -> None:
        self.app_overrides = [o for o in overrides if _key(o) == "app" or _key(o).startswith("app.")]
        self.infer_overrides = [o for o in overrides if o not in self.app_overrides]
        self.user_dir = user_config_dir()
        self._lock = threading.Lock()

    def search_dirs(self) -> list[Path]:
        """Where configs live: the packaged `conf/`, then the user config folder when there is one."""
        dirs = [Path(str(resources.files(CONFIG_MODULE)))]
        return dirs + ([self.user_dir] if self.user_dir else [])

    def options(self, group: str) -> list[str]:
        """The options of a config group (`infer/stage1`): its `*.yaml` files in every search folder."""
        found = {p.stem for d in self.search_dirs() for p in (d / group).glob("*.yaml")}
        return sorted(found)

    def compose(self, overrides: Sequence[str], output_dir: Path | None = None) -> DictConfig:
        """`conf/infer.yaml` with `overrides`, Hydra's node kept (`cfg.hydra`) and `${hydra:...}` resolvable."""
        extra = [f"hydra.searchpath=[file://{self.user_dir}]"] if self.user_dir else []
        with self._lock:
            GlobalHydra.instance().clear()
            try:
                with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
                    cfg = compose("infer", overrides=[*extra, *overrides], return_hydra_config=True)
            except Exception as err:  # Hydra's own errors (unknown key, bad option) are the user's to fix
                raise UserError(f"configuration: {err}") from None
            finally:
                GlobalHydra.instance().clear()
            with open_dict(cfg):
                cfg.hydra.runtime.output_dir = str(output_dir or Path.cwd())
                cfg.hydra.job.num = 0
            HydraConfig.instance().set_config(cfg)
            return cfg

    @property
    def staged_overrides(self) -> list[str]:
        """Command-line overrides of one stage's node (`stage2.nst.module.vgg.weights=...`)."""
        return [o for o in self.infer_overrides if _key(o).startswith(("stage1.", "stage2."))]

    def base(self) -> DictConfig:
        """The infer config as the command line sets it, before any job's choices (labels, seed...)."""
        return self.compose([o for o in self.infer_overrides if o not in self.staged_overrides])

    def settings(self) -> DictConfig:
        """The resolved `app` settings (conf/app/default.yaml unless `app=<option>`)."""
        chosen = any(_key(o) == "app" for o in self.app_overrides)
        plain = [o for o in self.infer_overrides if o not in self.staged_overrides]
        cfg = self.compose([*([] if chosen else ["+app=default"]), *plain, *self.app_overrides])
        with self._lock:
            return OmegaConf.create(OmegaConf.to_container(cfg.app, resolve=True))

    def job_config(self, overrides: Sequence[str], run_dir: Path) -> DictConfig:
        """A job's infer config writing into `run_dir`, resolved, with `.hydra/` written as a Hydra run would
        (config, choices, overrides): the compare page reads app runs like `infer.py` runs.

        Command-line overrides of a stage this job does not use (`stage2.nst.*` when NST is not chosen) are left
        out: they are meant for the jobs that choose it."""
        staged = self.staged_overrides
        plain = merge_overrides([o for o in self.infer_overrides if o not in staged], overrides)
        probe = self.compose(plain, run_dir)
        fits = [o for o in staged if OmegaConf.select(probe, _key(o).rsplit(".", 1)[0]) is not None]
        merged = merge_overrides(fits, plain)
        cfg = self.compose(merged, run_dir) if fits else probe
        with self._lock:
            HydraConfig.instance().set_config(cfg)
            with open_dict(cfg):
                cfg.paths.output_dir = str(run_dir)
            hydra_node = OmegaConf.to_container(cfg.hydra, resolve=False)
            with open_dict(cfg):
                del cfg.hydra
            OmegaConf.resolve(cfg)
        meta = run_dir / ".hydra"
        meta.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, meta / "config.yaml")
        choices = hydra_node.get("runtime", {}).get("choices", {})
        (meta / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
        (meta / "overrides.yaml").write_text(yaml.safe_dump(list(merged)))
        return cfg
