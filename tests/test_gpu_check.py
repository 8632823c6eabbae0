"""`benchmarks/gpu_check.sh`, the script a lent GPU runs for its few minutes: its CPU dry run (`--accelerator cpu`:
tiny sizes, fp32, the eager compile backend) passes every check, so the script cannot rot between GPU loans; a failing
check stops it with a non-zero exit and a summary row; it never imports the tests (the GPU machine has no pytest)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
CHECKS = [
    "environment",
    "cyclegan",
    "cyclegan_ema_compile",
    "spade",
    "pix2pix",
    "nst",
    "painter",
    "benchmark",
]


def _run(out: Path, python: str = sys.executable, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": python, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["bash", str(SCRIPT), "--accelerator", "cpu", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _rows(summary: Path) -> dict[str, list[str]]:
    rows = [line.strip("|").split("|") for line in summary.read_text().splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


@pytest.mark.slow
def test_the_dry_run_passes_every_check(tmp_path):
    r = _run(tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    rows = _rows(tmp_path / "summary.md")
    assert list(rows) == CHECKS
    painter = (ROOT / "conf" / "experiment" / "nnst.yaml").is_file()
    for name, (status, seconds, note) in rows.items():
        expected = "SKIPPED" if name == "painter" and not painter else "OK"
        assert status == expected and int(seconds) >= 0, (name, status, note)
    assert "resumed from step 8" in rows["cyclegan"][2] and "losses finite" in rows["cyclegan"][2]
    assert (
        "EMA tensors" in rows["cyclegan_ema_compile"][2]
        and "no eager fallback" in rows["cyclegan_ema_compile"][2]
    )
    assert (tmp_path / "nst" / "run" / "nst" / "final.png").is_file()
    assert "CycleGAN training" in (tmp_path / "benchmark.txt").read_text()


def test_a_failing_check_stops_the_script(tmp_path):
    """`train.py` fails: the environment check passed, the first training check fails and nothing runs after it."""
    python = tmp_path / "python"
    python.write_text(
        f'#!/bin/sh\ncase "$1" in train.py) echo "boom" >&2; exit 3;; esac\nexec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    r = _run(tmp_path / "out", python=str(python), timeout=300)
    assert r.returncode == 1
    assert "FAILED: cyclegan (exit 3" in r.stderr and "boom" in r.stderr
    rows = _rows(tmp_path / "out" / "summary.md")
    assert list(rows) == ["environment", "cyclegan"] and rows["cyclegan"][0] == "FAILED"


def test_the_check_and_the_benchmarks_never_import_the_tests():
    for path in [SCRIPT.with_suffix(".py"), *SCRIPT.parent.glob("*.py")]:
        if not path.is_file():
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.split(".")[0] in ("tests", "pytest")], (path.name, names)
    assert "tests" not in SCRIPT.read_text().replace("tests/test_gpu_check.py", "")
