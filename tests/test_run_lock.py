"""A run folder belongs to one run (runtime/run_lock.py): a second live run is refused (two at once through the
console script: tests/test_bad_input.py), a dead run's lock is free at once, DDP ranks other than 0 take none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from underpainting.runtime import run_lock
from underpainting.runtime.destinations import DestinationError


def _holder(folder, then: str) -> subprocess.Popen:
    code = textwrap.dedent(
        f"""
        from underpainting.runtime import run_lock
        run_lock.acquire({str(folder)!r})
        print("held", flush=True)
        {then}
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_live_holder_refuses_and_names_itself(tmp_path):
    holder = _holder(tmp_path / "run", "import time; time.sleep(60)")
    try:
        with pytest.raises(run_lock.RunFolderBusy, match=f"in use by run pid {holder.pid} on .*started"):
            run_lock.acquire(tmp_path / "run")
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("death", ["sigkill", "exception"])
def test_a_dead_run_leaves_no_stuck_lock(tmp_path, death):
    then = (
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
        if death == "sigkill"
        else "raise SystemExit(3)"
    )
    holder = _holder(tmp_path / "run", then)
    assert holder.wait() == (-signal.SIGKILL if death == "sigkill" else 3)
    assert (tmp_path / "run" / run_lock.LOCK_NAME).is_file()  # the file stays, naming the last holder ...
    with run_lock.hold_run_folder(tmp_path / "run"):  # ... but the kernel dropped the lock with the process
        assert tmp_path.joinpath("run").resolve() in run_lock._held
    assert tmp_path.joinpath("run").resolve() not in run_lock._held


def test_ranks_other_than_zero_share_their_folder(tmp_path, monkeypatch):
    holder = _holder(tmp_path / "run", "import time; time.sleep(60)")
    try:
        monkeypatch.setenv("LOCAL_RANK", "1")
        with run_lock.hold_run_folder(
            tmp_path / "run"
        ):  # rank 1 of the run that holds it: no lock, no refusal
            pass
    finally:
        holder.kill()
        holder.wait()


def test_an_unwritable_run_folder_is_named_with_its_key(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DestinationError, match=r"`hydra.run.dir` .*/file/run: cannot write there"):
        run_lock.acquire(tmp_path / "file" / "run")


def test_infer_takes_the_lock_too(tmp_path):
    """infer's run folder is named after its stages (`${hydra:runtime.choices...}`): the lock callback must resolve
    it (it warned "HydraConfig was not set" on every `python infer.py` and took no lock)."""
    import warnings

    from tests.conftest import ROOT, run_console_script
    from underpainting import cli

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # Hydra turns a callback's exception into a UserWarning
        run_console_script(
            cli.infer,
            [
                f"paths.log_dir={tmp_path}",  # the run folder itself from conf/hydra: <log_dir>/infer/<time>_<stages>
                "infer/stage1=procedural",
                "infer/stage2=[]",
                f"input={ROOT / 'examples' / 'sketches' / 'synthetic_seed3.png'}",
                "progress=false",
            ],
        )
    [lock] = tmp_path.glob("infer/*/.run.lock")
    assert "procedural" in lock.parent.name
