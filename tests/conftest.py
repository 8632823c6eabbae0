"""Shared fixtures: the real Hydra configs composed for tests, tiny and offline."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import DictConfig

from underpainting.config.compose import compose_run

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# A fixed thread count (1 unless OMP_NUM_THREADS says otherwise), inherited by the subprocesses tests start: the
# suite's time no longer depends on the machine's core count, and learning tests are checked at 1 and 2 threads.
SUITE_THREADS = int(os.environ.setdefault("OMP_NUM_THREADS", "1"))
torch.set_num_threads(SUITE_THREADS)
# Under CI=true a skip for a missing tool or optional extra (the browser, efficientnet, the Optuna sweeper) is a
# failure: CI installs everything. Only data that lives outside the repo (../shared) and GPUs may be absent.
ALLOWED_CI_SKIPS = ("../shared", "GPU", "CUDA")

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED = ROOT.parent / "shared"

# Tiny overrides that make any CycleGAN config train in seconds on 2 CPU cores.
TINY_CYCLEGAN = [
    "data=synthetic",
    "data.image_size=32",
    "data.num_train=8",
    "data.num_val=2",
    "data.batch_size=2",
    "data.num_workers=0",
    "model.G_AB.ngf=8",
    "model.G_AB.n_blocks=1",
    "model.D_A.ndf=8",
    "logger=none",
    "callbacks.progress_bar=null",
]


@pytest.fixture(scope="session")
def labels():
    """The project's landscape label set (conf/labels/landscape.yaml)."""
    from underpainting.data.labels import LabelSet

    return LabelSet.from_yaml(CONF / "labels" / "landscape.yaml")


def run_console_script(entry, args: list[str]) -> None:
    """Call a console-script entry (`underpainting.cli.train` ...) as the shell would, with `args` as its argv."""
    import sys
    from unittest import mock

    from hydra.core.global_hydra import GlobalHydra

    with mock.patch.object(sys, "argv", [f"underpainting-{entry.__name__}", *args]):
        try:
            entry()
        finally:
            GlobalHydra.instance().clear()


def compose_train(overrides: list[str], output_dir: Path, config_name: str = "train") -> DictConfig:
    """Compose `conf/<config_name>.yaml` as `python train.py <overrides>` would, writing into `output_dir`."""
    return compose_run(overrides, output_dir, config_name, root_dir=ROOT)


@pytest.fixture
def make_cfg(tmp_path):
    """`make_cfg([...overrides], subdir="")` -> a composed train config writing into tmp_path / subdir."""
    return lambda overrides, subdir="", config_name="train": compose_train(
        overrides, tmp_path / subdir, config_name
    )


@pytest.fixture
def one_thread():
    """The suite's thread count for this test (1 by default: on 2 shared cores one intra-op thread is several times
    faster than two fighting other processes), restored after it."""
    n = torch.get_num_threads()
    torch.set_num_threads(SUITE_THREADS)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def gloo_group(tmp_path):
    """A one-rank gloo process group around the test: enough to put DDP and SyncBatchNorm on their distributed
    paths in-process (the multi-rank runs are train.py subprocesses)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'gloo_group'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.fixture(autouse=True)
def _no_leftover_log_handlers():
    """A Hydra app run in a test sets up the root logger (a console handler on that test's captured stdout, a file
    handler in its run folder): remove what the test added, so that a later test's log lines (an entry point's
    error line) do not go to a closed capture and print "--- Logging error ---" tracebacks."""
    before = set(logging.root.handlers)
    yield
    for handler in set(logging.root.handlers) - before:
        if not type(handler).__module__.startswith("_pytest"):
            logging.root.removeHandler(handler)
            handler.close()


@pytest.fixture(autouse=True)
def _pil_limit_restored():
    """The app's entry point sets PIL's process-wide bomb check to its pixel limit (`guard_decoding`): a test that
    runs it in-process must not leave that limit to the tests after it."""
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = before


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not any(allowed in reason for allowed in ALLOWED_CI_SKIPS):
            report.outcome = "failed"
            report.longrepr = (
                f"CI=true turns this skip into a failure (CI installs every tool and extra): {reason}"
            )


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (real data and weights live there on the development machine)")
    return SHARED


class RecordLosses(pl.Callback):
    """Per-step training losses and learning rate, keyed by global step."""

    def __init__(self) -> None:
        self.losses: dict[int, dict[str, float]] = {}
        self.lrs: dict[int, float] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        m = trainer.callback_metrics
        self.losses[trainer.global_step] = {k: float(v) for k, v in m.items() if k.startswith("train/")}
        self.lrs[trainer.global_step] = trainer.optimizers[0].param_groups[0]["lr"]

    def series(self, name: str) -> list[float]:
        return [self.losses[s][name] for s in sorted(self.losses)]
