"""Console scripts, packaged configs and the user config folder; `--help`; the debug profiles."""

from __future__ import annotations

import importlib
import importlib.resources
import sys

import pytest

from tests.conftest import ROOT, TINY_CYCLEGAN, run_console_script
from underpainting import cli
from underpainting.config import compose
from underpainting.errors import ConfigError
from underpainting.train import run


def test_every_console_script_points_at_a_callable():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert {
        "underpainting-train",
        "underpainting-infer",
        "underpainting-metrics",
        "underpainting-compare",
    } <= set(scripts)
    for name, target in scripts.items():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), name


def test_packaged_configs_are_the_repository_conf():
    """`pkg://underpainting.conf` (what the console scripts compose) is the top-level conf/ folder."""
    assert (ROOT / "src" / "underpainting" / "conf").resolve() == (ROOT / "conf").resolve()
    packaged = importlib.resources.files("underpainting.conf")
    for rel in ("train.yaml", "infer.yaml", "experiment/quickstart.yaml", "labels/landscape.yaml"):
        assert (packaged / rel).read_text() == (ROOT / "conf" / rel).read_text(), rel


def test_help_lists_groups_and_options_without_the_palette(capsys):
    with pytest.raises(SystemExit) as done:
        run_console_script(cli.train, ["--help"])
    assert done.value.code in (0, None)
    text = capsys.readouterr().out
    experiments = next(line for line in text.splitlines() if line.startswith("experiment: "))
    assert {"quickstart", "nst_quickstart", "doodle"} <= set(
        experiments.removeprefix("experiment: ").split(", ")
    )
    assert "debug: fast_dev_run, limit, overfit, profiler" in text
    assert "logger: csv, many_loggers, none, tensorboard, wandb" in text
    assert "coco_stuff" not in text and "rgb" not in text  # the label palette is not dumped
    assert len(text.splitlines()) < 60


def test_user_config_folder_adds_options_and_local_overrides_last(tmp_path, monkeypatch, capsys):
    user = tmp_path / "my_conf"
    (user / "experiment").mkdir(parents=True)
    (user / "local").mkdir()
    (user / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: cyclegan\nrun_name: my_attempt\nmodel:\n  lambda_A: 7.0\n"
    )
    (user / "local" / "default.yaml").write_text("# @package _global_\ntrainer:\n  max_epochs: 3\n")
    monkeypatch.setenv(compose.USER_CONFIG_ENV, str(user))
    run_console_script(cli.train, ["experiment=mine", "--cfg", "job"])
    text = capsys.readouterr().out
    assert "run_name: my_attempt" in text and "lambda_A: 7.0" in text and "max_epochs: 3" in text
    monkeypatch.setenv(compose.USER_CONFIG_ENV, str(tmp_path / "typo"))
    with pytest.raises(ConfigError, match="is not a folder"):
        compose.user_config_dir()
    with pytest.raises(SystemExit) as done:  # the console script: one line, exit 1
        run_console_script(cli.train, ["experiment=mine"])
    assert done.value.code == 1
    assert "error: UNDERPAINTING_CONFIG_DIR=" in capsys.readouterr().err


def test_zoo_command_says_when_the_zoo_is_not_installed(capsys, monkeypatch):
    # as in an install without the zoo package, whether or not an earlier test imported it
    monkeypatch.setitem(sys.modules, "underpainting.zoo", None)
    monkeypatch.setitem(sys.modules, "underpainting.zoo.__main__", None)
    with pytest.raises(SystemExit) as done:
        cli.zoo()
    assert done.value.code == 1
    assert "error: this installation has no underpainting.zoo" in capsys.readouterr().err


def test_fast_dev_run_writes_no_checkpoint(make_cfg, tmp_path):
    """Before: Lightning's ModelCheckpoint wrote last.ckpt at train end even under fast_dev_run."""
    run(make_cfg([*TINY_CYCLEGAN, "debug=fast_dev_run"]))
    assert not list(tmp_path.rglob("*.ckpt"))
    assert list((tmp_path / "samples").glob("final_*.png"))  # the run itself did happen


def test_profiler_debug_profile_writes_its_report(make_cfg, tmp_path):
    run(make_cfg([*TINY_CYCLEGAN, "debug=profiler", "data.num_train=4"]))
    report = (tmp_path / "profiler" / "fit-profile.txt").read_text()
    assert "run_training_epoch" in report and "Mean duration" in report
