"""Real signals to real `train.py` processes: SIGKILL (at any moment, even mid-write of a checkpoint), SIGTERM (what
a cluster sends before preemption, to the whole process group, DataLoader workers included), SLURM's requeue signal,
and a `max_time` budget. Each leaves a checkpoint from which the run continues exactly as if it had never stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, TINY_CYCLEGAN
from tests.test_resume_boundaries import assert_same_state

# 8 items, batch 2 -> 4 batches (8 steps) an epoch; 2 DataLoader workers as on a real run.
COMMON = [
    *[o for o in TINY_CYCLEGAN if o != "data.num_workers=0"],
    "data.num_workers=2",
    "trainer.max_epochs=6",
    "model.scheduler.n_epochs=3",
    "model.scheduler.n_epochs_decay=3",
    "model.G_AB.dropout=true",
    "callbacks.model_checkpoint.every_n_train_steps=4",
    "callbacks.sample_grid.every_n_steps=0",
    "trainer.log_every_n_steps=2",
]
ENV = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _start(out: Path, *extra: str, env=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "train.py", *COMMON, *extra, f"hydra.run.dir={out}"],
        cwd=ROOT, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen, timeout: int = 300) -> tuple[int, str]:
    """Exit status and everything printed (Hydra logs to stdout, Lightning and errors to stderr)."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def _train(out: Path, *extra: str) -> dict:
    rc, err = _finish(_start(out, *extra))
    assert rc == 0, err[-3000:]
    return torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)


def _wait_for_step(ckpt: Path, step: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if ckpt.is_file() and torch.load(ckpt, weights_only=True)["global_step"] >= step:
                return
        except Exception:  # noqa: BLE001 - replaced while we read it
            pass
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint at step {step}: {proc.poll()=}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The uninterrupted run every stopped-and-resumed run must equal."""
    return _train(tmp_path_factory.mktemp("reference"))


SLURM = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "train", "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1",
         "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost"}  # fmt: skip


@pytest.mark.slow
def test_a_job_requeued_preempted_and_killed_ends_like_the_one_left_alone(tmp_path, reference):
    """One job's life: SLURM's requeue signal (USR1), then SIGTERM to the process group (preemption; the DataLoader
    workers get it too), then SIGKILL; resumed each time, it ends bitwise equal to the uninterrupted run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    (bin_dir / "scontrol").chmod(0o755)

    # 1. SLURM asks for a requeue: hpc checkpoint after a whole step, `scontrol requeue <job>`, the run stops.
    a = tmp_path / "a"
    proc = _start(a, env={**ENV, **SLURM, "PATH": f"{bin_dir}:{ENV['PATH']}"})
    _wait_for_step(a / "checkpoints" / "last.ckpt", 8, proc)
    os.kill(proc.pid, signal.SIGUSR1)
    rc, text = _finish(proc)
    assert rc == 0 and "Traceback" not in text, text[-3000:]
    assert "SLURM's requeue signal; hpc checkpoint in" in text
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
    (hpc,) = a.glob("hpc_ckpt_*.ckpt")
    progress = torch.load(hpc, weights_only=True)["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]
    assert progress["processed"] == progress["ready"], "saved after a whole step, not inside one"

    # 2. The requeued job resumes from it and is preempted: SIGTERM to the whole process group.
    b = tmp_path / "b"
    proc = _start(b, f"ckpt_path={hpc}")
    _wait_for_step(b / "checkpoints" / "last.ckpt", 24, proc)
    os.killpg(proc.pid, signal.SIGTERM)
    rc, text = _finish(proc)
    assert rc == 0 and "Traceback" not in text, text[-3000:]
    stop = re.search(
        r"stopping at step (\d+) \(epoch \d+, batch \d+ of 4\): SIGTERM; checkpoint (\S+);", text
    )
    assert stop, text[-3000:]
    state = torch.load(stop.group(2), weights_only=True)
    assert state["global_step"] == int(stop.group(1)) >= 24 and state["global_step"] % 2 == 0, (
        "after a whole step"
    )
    log = (b / "train.log").read_text()
    assert re.search(r"step \d+ epoch \d+ batch \d+/4 .*train/cycle_A=", log), (
        "train.log records the run as it goes"
    )
    assert f"resumed from {hpc}" in log and "checkpoint written" in log and "SIGTERM" in log

    # 3. Resumed again, and killed outright.
    c = tmp_path / "c"
    proc = _start(c, f"ckpt_path={stop.group(2)}")
    _wait_for_step(c / "checkpoints" / "last.ckpt", 36, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    # 4. The last resume runs to the end.
    assert_same_state(_train(tmp_path / "d", f"ckpt_path={c / 'checkpoints' / 'last.ckpt'}"), reference)


@pytest.mark.slow
def test_max_time_ends_the_run_mid_epoch_with_one_message_and_a_checkpoint(tmp_path):
    out = tmp_path / "a"
    # 400 items: an epoch is far longer than the 4 s budget; min_epochs=1 used to hold the run to its end.
    rc, err = _finish(_start(out, "data.num_train=400", "+trainer.max_time=00:00:00:04"))
    assert rc == 0, err[-3000:]
    assert err.count("stopping at step") == 1 and "Time limit reached" not in err, err[-3000:]
    step = int(
        re.search(r"stopping at step (\d+) \(epoch 0, batch \d+ of 200\): trainer.max_time", err).group(1)
    )
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == step < 400


_SLOW_WRITER = """
import io, sys, time, torch
from underpainting.checkpoints import AtomicCheckpointIO
real_save = torch.save
def slow_save(obj, f, *a, **k):  # a slow disk: the bytes trickle out
    buf = io.BytesIO(); real_save(obj, buf); data = buf.getvalue()
    for i in range(0, len(data), 2048):
        f.write(data[i : i + 2048]); f.flush(); print("writing", flush=True); time.sleep(0.02)
torch.save = slow_save
ckpt = torch.load(sys.argv[1], weights_only=True)
ckpt["global_step"] = 10**6
AtomicCheckpointIO().save_checkpoint(ckpt, sys.argv[1])
"""


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one(make_cfg, tmp_path):
    from underpainting.train import run

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(make_cfg([*TINY_CYCLEGAN, "trainer.max_steps=4", "callbacks.sample_grid.every_n_steps=0"], "a"))
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    size = ckpt.stat().st_size
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(ckpt)], env={**ENV, "PYTHONPATH": str(ROOT / "src")},
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    for _ in range(5):
        proc.stdout.readline()  # a few chunks are on disk
    proc.kill()  # SIGKILL: no cleanup runs
    proc.wait()
    (tmp,) = ckpt.parent.glob(".last.ckpt.*.tmp")
    assert 0 < tmp.stat().st_size < size, "killed mid-write"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 4, "the previous checkpoint is intact"
    with warnings.catch_warnings():  # the next start (a resume from that folder) removes the leftover
        warnings.simplefilter("ignore")
        run(
            make_cfg(
                [
                    *TINY_CYCLEGAN,
                    "trainer.max_steps=6",
                    f"ckpt_path={ckpt}",
                    "callbacks.sample_grid.every_n_steps=0",
                ],
                "b",
            )
        )
    assert not tmp.exists()


@pytest.mark.slow
def test_a_requeue_signal_to_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    """Two DDP ranks started as `srun` starts them (SLURM variables, gloo), SLURM's signal sent to rank 1 only: the
    ranks agree after the step, both save the hpc checkpoint together (its gathers are collectives) and stop; rank 0
    requeues the job. A rank that acted alone left the other training, both waiting in mismatched collectives."""
    from tests.test_multinode import _free_port

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    (bin_dir / "scontrol").chmod(0o755)
    run_dir = tmp_path / "run"
    args = ["trainer=ddp_cpu", "trainer.max_epochs=50"]
    slurm = {**ENV, **SLURM, "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "MASTER_ADDR": "127.0.0.1",
             "MASTER_PORT": str(_free_port()), "PATH": f"{bin_dir}:{ENV['PATH']}"}  # fmt: skip
    ranks = [
        _start(run_dir, *args, env={**slurm, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r)}) for r in (0, 1)
    ]
    try:
        _wait_for_step(run_dir / "checkpoints" / "last.ckpt", 8, ranks[0])
        os.kill(ranks[1].pid, signal.SIGUSR1)
        results = [_finish(p, timeout=120) for p in ranks]
    finally:
        for p in ranks:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    for rc, text in results:
        assert rc == 0 and "Traceback" not in text, text[-3000:]
    stop = re.search(r"stopping at step (\d+) .*: SLURM's requeue signal; hpc checkpoint", results[0][1])
    assert stop, results[0][1][-3000:]
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"], "rank 0 requeues, once"
    (hpc,) = run_dir.glob("hpc_ckpt_*.ckpt")
    state = torch.load(hpc, weights_only=True)
    assert state["global_step"] == int(stop.group(1)) and len(state["rng_by_rank"]) == 2
