"""Sweeps end to end through `train.py -m` on synthetic data with tiny nets: a 2-trial Optuna search whose
objective is the in-loop (stand-in) FID, kept in sqlite storage; and a multirun whose first trial crashes while the
next still runs and the failure is recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, TINY_CYCLEGAN

# Stand-in metric networks with random weights: no downloads; the numbers only exercise the plumbing.
TINY_METRICS = [
    "metrics/feature=random",
    "metrics/lpips=random",
    "data.num_val=4",
    "trainer.max_epochs=1",
    "callbacks.sample_grid.every_n_steps=0",
    "callbacks.model_checkpoint.every_n_train_steps=null",
]


def _train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "UNDERPAINTING_ROOT": str(cwd), "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_optuna_sweep_two_trials_minimises_val_fid(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep_dir, db = tmp_path / "sweep", tmp_path / "optuna.db"
    proc = _train(
        [
            "hparams_search=cyclegan_optuna",
            *TINY_CYCLEGAN,
            *TINY_METRICS,
            "hydra.sweeper.n_trials=2",
            f"hydra.sweeper.storage=sqlite:///{db}",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert result["name"] == "optuna" and set(result["best_params"]) >= {
        "model.lambda_A",
        "model.optimizer_G.lr",
    }
    fids = [
        json.loads((sweep_dir / str(i) / "metrics.json").read_text())["val"]["metrics"]["fid"] for i in (0, 1)
    ]
    assert result["best_value"] == pytest.approx(min(fids), rel=1e-5)

    import optuna

    study = optuna.load_study(study_name="cyclegan", storage=f"sqlite:///{db}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    summary = json.loads((sweep_dir / "sweep_summary.json").read_text())
    assert [t["status"] for t in summary] == ["done", "done"]


@pytest.mark.slow
def test_multirun_records_a_crashed_trial_and_goes_on(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = _train(
        [
            *TINY_CYCLEGAN,
            *TINY_METRICS,
            "callbacks=[default,metrics]",
            "callbacks.progress_bar=null",
            "model.optimizer_G.lr=-1,2e-4",  # a negative lr: the first trial is refused at composition
            f"hydra.sweep.dir={sweep_dir}",
        ],
        tmp_path,
    )
    # Hydra's basic sweeper runs every trial, then reports the failure with a non-zero exit.
    assert proc.returncode != 0
    failure = json.loads((sweep_dir / "0" / "failure.json").read_text())
    assert (
        failure["type"] == "ConfigError"
        and "`model.optimizer_G.lr`=-1 must be 0 or more" in failure["message"]
    )
    assert "model.optimizer_G.lr=-1" in failure["overrides"]
    assert (sweep_dir / "1" / "metrics.json").is_file() and (
        sweep_dir / "1" / "checkpoints" / "last.ckpt"
    ).is_file()
    summary = json.loads((sweep_dir / "sweep_summary.json").read_text())
    assert [t["status"] for t in summary] == ["failed", "done"]
