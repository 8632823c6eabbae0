"""The one checkpoints module: the only `torch.load` of src/, nothing above `errors` imported, pickled code refused
by every reader, errors that name the file, atomic writes, and modules rebuilt through their own load hook."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.conftest import CONF, ROOT, TINY_CYCLEGAN
from underpainting import checkpoints
from underpainting.errors import WeightsError

SRC = ROOT / "src" / "underpainting"
HOME = SRC / "checkpoints"


def _python_files(folder: Path) -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), str(p))) for p in sorted(folder.rglob("*.py"))]


def _torch_loads(tree: ast.Module) -> list[int]:
    """Lines that call `torch.load` (or `torch.serialization.load`), or import `load` from torch."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "load":
            owner = ast.unparse(node.value)
            if owner in ("torch", "torch.serialization"):
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization"):
            if any(a.name == "load" for a in node.names):
                lines.append(node.lineno)
    return lines


def test_only_the_checkpoints_module_calls_torch_load():
    found = {
        str(p.relative_to(SRC)): lines for p, tree in _python_files(SRC) if (lines := _torch_loads(tree))
    }
    elsewhere = {p: lines for p, lines in found.items() if not p.startswith("checkpoints/")}
    assert not elsewhere, f"torch.load outside underpainting.checkpoints: {elsewhere}"
    assert found, "the scan finds the checkpoints module's own call (it can fail)"


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and not node.level:
        return [node.module]
    return []


def test_checkpoints_imports_nothing_above_errors():
    """It sits at the bottom of the layers; imports inside functions count."""
    allowed = ("underpainting.errors", "underpainting.checkpoints")
    upward = [
        f"{p.name}:{node.lineno} {name}"
        for p, tree in _python_files(HOME)
        for node in ast.walk(tree)
        for name in _imported(node)
        if name.startswith("underpainting") and not name.startswith(allowed)
    ]
    assert not upward
    relative = [n for _, tree in _python_files(HOME) for n in ast.walk(tree) if getattr(n, "level", 0)]
    assert not relative, "relative imports would slip past this scan"


# ------------------------------------------------------------------------------------------------ pickled code
class _Payload:
    """Unpickling this opens (creates) the marker file: code that runs on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _readers():
    from underpainting.features.vgg import VGGFeatures
    from underpainting.metrics.lpips import LPIPSNet
    from underpainting.zoo import find_published, load_published

    return {
        "read": checkpoints.read,
        "peek": checkpoints.peek,
        "AtomicCheckpointIO": checkpoints.AtomicCheckpointIO().load_checkpoint,
        "build_model": checkpoints.build_model,
        "load_exported": checkpoints.load_exported,
        "load_published": load_published,
        "find_published": find_published,
        "VGGFeatures": lambda p: VGGFeatures(["relu1_1"], arch="vgg16", weights=str(p)),
        "LPIPSNet": lambda p: LPIPSNet("alex", weights=str(p)),
    }


def test_pickled_code_runs_in_no_reader(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "model.1.weight": _Payload(marker)}, path)
    torch.load(path, weights_only=False)
    assert marker.exists(), "the file does run code when fully unpickled"
    marker.unlink()
    for name, reader in _readers().items():
        try:
            result = reader(path)
        except Exception as e:
            result = e
        assert not marker.exists(), f"{name} ran the pickled code"
        if isinstance(result, WeightsError):
            assert str(path) in str(result), name
        elif isinstance(result, Exception):  # Lightning's IO: Lightning reports it
            assert name == "AtomicCheckpointIO" and "weights_only" in str(result), (name, result)
        else:
            assert result is None, name  # peek / find_published: not a file they know


# ------------------------------------------------------------------------------------------------------- read
def test_read_names_the_file_and_what_is_wrong(tmp_path):
    good = tmp_path / "good.ckpt"
    torch.save({"w": torch.ones(3)}, good)
    assert torch.equal(checkpoints.read(good)["w"], torch.ones(3))
    truncated, listed = tmp_path / "half.ckpt", tmp_path / "list.ckpt"
    truncated.write_bytes(good.read_bytes()[:40])
    torch.save([torch.ones(1)], listed)
    for path, says in (
        (tmp_path / "nope.ckpt", "does not exist"),
        (truncated, "is not a readable checkpoint"),
        (listed, "holds a list, not a checkpoint"),
    ):
        with pytest.raises(WeightsError, match=says) as err:
            checkpoints.read(path, fix="fix it so")
        msg = str(err.value)
        assert str(path) in msg and msg.endswith("fix it so") and "\n" not in msg
    assert checkpoints.peek(truncated) is None and checkpoints.peek(good)["w"].sum() == 3


# ------------------------------------------------------------------------------------------------------ write
def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(proc.stdout)


def test_write_replaces_whole_and_stale_temp_files_go(tmp_path):
    path = tmp_path / "deep" / "G.pt"
    checkpoints.write({"v": torch.tensor(1)}, path)
    checkpoints.write({"v": torch.tensor(2)}, path)
    assert checkpoints.read(path)["v"].item() == 2 and os.listdir(path.parent) == ["G.pt"]
    dead = path.with_name(f".G.pt.{_dead_pid()}.tmp")
    mine = path.with_name(f".G.pt.{os.getpid()}.tmp")  # a save in progress in this process
    dead.write_bytes(b"torn"), mine.write_bytes(b"writing")
    assert checkpoints.remove_stale_temp_files(path.parent) == [dead]
    assert sorted(os.listdir(path.parent)) == [mine.name, "G.pt"]


# ------------------------------------------------------------------------------------------- labels, modules
def test_label_check_takes_a_label_set_or_its_stored_form(labels):
    stored = yaml.safe_load((CONF / "labels" / "landscape.yaml").read_text())
    checkpoints.check_labels(stored, labels, "x.ckpt")
    stored["classes"][3]["rgb"] = [1, 2, 3]
    with pytest.raises(
        WeightsError, match=r"x.ckpt was trained with a different label set .* first difference: id 3"
    ):
        checkpoints.check_labels(stored, labels, "x.ckpt")


def test_build_model_fits_the_state_dict_through_the_modules_own_hook(make_cfg, tmp_path):
    """The module's `on_load_checkpoint` (as in Lightning's restore) drops weight averages its config has switched
    off; checkpoints itself knows nothing about EMA."""
    cfg = make_cfg(TINY_CYCLEGAN)
    model = instantiate(cfg.model)
    assert getattr(model, "ema", None) is None, "the default CycleGAN averages nothing"
    sd = model.state_dict()
    sd.update({f"ema.shadow.{k}": v + 1 for k, v in sd.items() if k.startswith("G_BA.")})
    path = tmp_path / "with_averages.ckpt"
    torch.save({"underpainting_config": OmegaConf.to_container(cfg, resolve=True), "state_dict": sd}, path)
    rebuilt, _ = checkpoints.build_model(path)
    assert all(torch.equal(v, sd[f"G_BA.{k}"]) for k, v in rebuilt.G_BA.state_dict().items())
    assert not rebuilt.training
