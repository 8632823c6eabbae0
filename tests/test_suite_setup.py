"""The test suite's own rules: a fixed thread count, and no silent skips in CI."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from tests.conftest import ROOT, SUITE_THREADS

INNER = """
import pytest
def test_needs_a_tool():
    pytest.skip("needs Debian's chromium (apt-get install -y chromium)")
def test_needs_an_extra():
    pytest.importorskip("a_module_that_is_not_installed")
def test_needs_shared_data():
    pytest.skip("../shared is absent")
"""


def _inner(tmp_path, ci: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "true"} if ci else {})
    env["PYTHONPATH"] = f"{ROOT / 'src'}:{ROOT}"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_missing_tools_and_extras_fail_under_ci_but_shared_data_may_be_absent(tmp_path):
    ci = _inner(tmp_path, ci=True)
    assert ci.returncode == 1 and "2 failed, 1 skipped" in ci.stdout, ci.stdout[-2000:]
    assert "CI=true turns this skip into a failure" in ci.stdout and "chromium" in ci.stdout
    assert "SKIPPED [1]" in ci.stdout and "../shared is absent" in ci.stdout, "-rs: the reason is printed"


def test_fixed_thread_count():
    assert SUITE_THREADS == int(os.environ["OMP_NUM_THREADS"]) and torch.get_num_threads() == SUITE_THREADS
