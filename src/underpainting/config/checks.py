"""Config mistakes as one paragraph that names the key, before anything is built.

- `check_types`: every plain value given to a `_target_` is compared with the annotation of the parameter it
  fills (`trainer.max_steps=abc` -> "trainer.max_steps='abc' is not an int ..."), instead of a TypeError deep in
  the class that names no key. Annotations it does not fully understand are skipped, never guessed.
- `check_values`: numbers no run can use, by the parameter's name wherever it appears (`data.batch_size=0`,
  `model.optimizer_G.lr=-1`), instead of a ValueError from inside the DataLoader or the optimizer.
- `build`: `hydra.utils.instantiate` whose unknown-key errors name the key, and, when an experiment set it, say that
  the experiment was written for other data (`experiment=quickstart data=vangogh_landscapes`).
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from underpainting.errors import ConfigError, UserError

_SIMPLE = (bool, int, float, str, type(None))


def _accepts(annotation: Any, value: Any) -> bool | None:
    """Whether `value` fits `annotation`: True, False, or None when the annotation is not understood."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return None
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        answers = [_accepts(a, value) for a in typing.get_args(annotation)]
        return True if True in answers else None if None in answers else False
    if origin is Literal:
        return value in typing.get_args(annotation) or str(value) in map(str, typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            or isinstance(value, float)
            and value.is_integer()
        )
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is str or annotation is Path:
        return isinstance(value, str)
    return None


def _describe(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "")


def _hints(target: Any) -> tuple[inspect.Signature, dict[str, Any]] | None:
    fn = target.__init__ if inspect.isclass(target) else target
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolvable forward references: check nothing rather than guess
        return None
    return sig, hints


def type_errors(node: DictConfig, key: str) -> list[str]:
    """Messages for the plain values under `node` (recursively) that do not fit their parameters' annotations."""
    errors: list[str] = []
    if "_target_" in node:
        try:
            target = get_object(node._target_)
        except Exception:  # noqa: BLE001 - a wrong _target_ is reported by instantiate itself
            target = None
        found = _hints(target) if target is not None else None
        if found is not None:
            sig, hints = found
            for name in node:
                if (
                    str(name).startswith("_")
                    or name not in sig.parameters
                    or OmegaConf.is_missing(node, name)
                ):
                    continue
                value = node[name]
                if not isinstance(value, _SIMPLE):
                    continue
                if _accepts(hints.get(name, inspect.Parameter.empty), value) is False:
                    errors.append(
                        f"{key}.{name}={value!r} is not valid: {target.__name__} takes {name}: "
                        f"{_describe(hints[name])}"
                    )
    for name in node:
        if OmegaConf.is_missing(node, name):
            continue
        child = node._get_node(name)
        if isinstance(child, DictConfig):
            errors += type_errors(child, f"{key}.{name}")
        elif isinstance(child, ListConfig):
            for i, item in enumerate(child):
                if isinstance(item, DictConfig):
                    errors += type_errors(item, f"{key}.{name}[{i}]")
    return errors


def check_types(
    cfg: DictConfig, groups: tuple[str, ...] = ("data", "model", "trainer", "callbacks", "logger")
) -> None:
    errors = [e for g in groups if isinstance(cfg.get(g), DictConfig) for e in type_errors(cfg[g], g)]
    if errors:
        raise ConfigError("; ".join(errors) + ". Fix the value on the command line or in its config file.")


def _at_least(low: float, strict: bool = False) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v > low, f"above {low:g}") if strict else (lambda v: v >= low, f"{low:g} or more")


# Values no class can use, by parameter name: the name means the same wherever it appears in these groups.
VALUE_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "batch_size": _at_least(1),
    "num_workers": _at_least(0),
    "lr": _at_least(0),  # 0 freezes the network (a valid probe); below 0 climbs the loss
    "weight_decay": _at_least(0),
    "image_size": _at_least(1),
    "load_size": _at_least(1),
    "crop_size": _at_least(1),
    "patch_size": _at_least(1),
    "num_train": _at_least(1),
    "num_val": _at_least(1),
    "steps_per_epoch": _at_least(1),
    "max_epochs": _at_least(-1),  # Lightning: -1 means no limit
    "max_steps": _at_least(-1),
    "accumulate_grad_batches": _at_least(1),
    "log_every_n_steps": _at_least(1),
}


def value_errors(node: DictConfig, key: str) -> list[str]:
    """Messages for the numbers under `node` (recursively) that break `VALUE_RULES`."""
    errors: list[str] = []
    for name in node:
        if OmegaConf.is_missing(node, name):
            continue
        child = node._get_node(name)
        if isinstance(child, DictConfig):
            errors += value_errors(child, f"{key}.{name}")
            continue
        value = node[name]
        rule = VALUE_RULES.get(str(name))
        if rule and isinstance(value, int | float) and not isinstance(value, bool) and not rule[0](value):
            errors.append(f"`{key}.{name}`={value} must be {rule[1]}")
    return errors


def check_values(
    cfg: DictConfig, groups: tuple[str, ...] = ("data", "model", "trainer", "callbacks")
) -> None:
    errors = [e for g in groups if isinstance(cfg.get(g), DictConfig) for e in value_errors(cfg[g], g)]
    if errors:
        raise ConfigError("; ".join(errors) + ". Fix the value on the command line or in its config file.")


def _choices() -> dict[str, str]:
    if not HydraConfig.initialized():
        return {}
    return {k: v for k, v in HydraConfig.get().runtime.choices.items() if isinstance(v, str)}


def _experiment_data(experiment: str) -> str | None:
    """The `data` an experiment file chooses (`override /data: ...` in its defaults list)."""
    if not HydraConfig.initialized():
        return None
    for source in HydraConfig.get().runtime.config_sources:
        if source.provider != "main" or source.path.startswith("pkg://"):
            continue
        path = Path(source.path.removeprefix("file://")) / "experiment" / f"{experiment}.yaml"
        if path.is_file():
            for entry in OmegaConf.load(path).get("defaults", []):
                if isinstance(entry, DictConfig) and "override /data" in entry:
                    return str(entry["override /data"])
    return None


def _rejecting_node(node: DictConfig, name: str, key: str) -> tuple[str, str] | None:
    """(key, class name) of the first node under `node` that sets `name` although its `_target_` takes no such
    argument, or None."""
    if "_target_" in node and name in node:
        try:
            params = inspect.signature(get_object(node._target_)).parameters
        except Exception:  # noqa: BLE001 - a target that cannot be inspected is not the one to blame
            params = None
        kinds = {p.kind for p in (params or {}).values()}
        if params is not None and name not in params and inspect.Parameter.VAR_KEYWORD not in kinds:
            return key, str(node._target_).rsplit(".", 1)[-1]
    for child in node:
        value = node._get_node(child)
        if isinstance(value, DictConfig) and not OmegaConf.is_missing(node, child):
            found = _rejecting_node(value, name, f"{key}.{child}")
            if found:
                return found
    return None


def build(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """`instantiate(node)`; a user error raised inside comes out unwrapped, an unknown key as a ConfigError."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(cause or e))
        if not unknown:
            raise
        full = re.search(r"full_key: (\S+)", str(e))
        name = unknown.group(1)
        # a `_partial_` child (NST's objective, the MRF loss) is called by its parent, whose key Hydra reports
        where, target = _rejecting_node(node, name, key) or (
            full.group(1) if full else key,
            str(node.get("_target_", "?")).rsplit(".", 1)[-1],
        )
        choices = _choices()
        group = key.split(".")[0]
        msg = f"`{where}.{name}` is not a setting of {target}" + (
            f" ({group}={choices[group]})" if group in choices else ""
        )
        experiment = choices.get("experiment")
        made_for = _experiment_data(experiment) if experiment else None
        if experiment and made_for and made_for != choices.get("data"):
            msg += (
                f". It comes from experiment={experiment}, which is made for data={made_for} only: drop the "
                f"experiment to train on data={choices.get('data')} (`python train.py model={choices.get('model')} "
                f"data={choices.get('data')} ...`, see README)"
            )
        else:
            msg += f": remove it or check its spelling in the {group} config"
        raise ConfigError(msg + ".") from None
