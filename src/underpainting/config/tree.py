"""The resolved run config as a rich tree at start (lightning-hydra-template's `print_config_tree`), also saved as
`<run dir>/config_tree.log`. The label palette is summarised to one line: it is long and rarely what a user checks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

ORDER = ("data", "model", "callbacks", "logger", "trainer", "paths")


def _summarise_labels(node) -> None:
    """Every label set (a `classes` list of {id, name, rgb...}; `labels` is interpolated into data and model too)."""
    if isinstance(node, dict):
        classes = node.get("classes")
        if (
            isinstance(classes, list)
            and classes
            and all(isinstance(c, dict) and "name" in c for c in classes)
        ):
            names = [str(c["name"]) for c in classes]
            node["classes"] = f"{len(names)} classes ({', '.join(names[:4])}, ...)"
        for value in node.values():
            _summarise_labels(value)
    elif isinstance(node, list):
        for value in node:
            _summarise_labels(value)


def config_tree_text(cfg: DictConfig, order: Sequence[str] = ORDER, resolve: bool = True) -> str:
    """The tree as plain text (what is saved; the console gets colours)."""
    from rich.console import Console

    console = Console(record=True, width=110, force_terminal=False, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(_tree(cfg, order, resolve))
    return console.export_text()


def _tree(cfg: DictConfig, order: Sequence[str], resolve: bool):
    import rich.syntax
    import rich.tree

    data = OmegaConf.to_container(cfg, resolve=resolve, throw_on_missing=False)
    _summarise_labels(data)
    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    keys = [k for k in order if k in data] + [k for k in data if k not in order]
    for key in keys:
        branch = tree.add(str(key), style="bold", guide_style="dim")
        value = data[key]
        text = OmegaConf.to_yaml(OmegaConf.create(value)) if isinstance(value, dict | list) else str(value)
        branch.add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    return tree


@rank_zero_only
def print_config_tree(
    cfg: DictConfig, save_dir: str | Path | None = None, order: Sequence[str] = ORDER
) -> None:
    """Print the tree; with `save_dir`, also write it to `save_dir/config_tree.log`."""
    import rich

    rich.print(_tree(cfg, order, resolve=True))
    if save_dir is not None:
        path = Path(save_dir) / "config_tree.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config_tree_text(cfg, order))
