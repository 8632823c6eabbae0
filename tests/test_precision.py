"""Mixed precision follows the machine: bf16 only where the CPU runs it natively (emulated bf16 is ~40x slower)."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import compose_train
from underpainting.runtime import precision


@pytest.mark.parametrize("native, expected", [(True, "bf16-mixed"), (False, "32-true")])
@pytest.mark.parametrize("experiment", ["quickstart", "spade_quickstart", "pix2pix_quickstart"])
def test_quickstarts_use_bf16_only_on_cpus_that_run_it_natively(
    monkeypatch, tmp_path, experiment, native, expected
):
    """Before: the quick-starts hard-coded bf16-mixed, and `make demo` took 25+ minutes instead of ~2 on AVX2 CPUs."""
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    cfg = compose_train([f"experiment={experiment}"], tmp_path)
    assert cfg.trainer.precision == expected
    cfg = compose_train([f"experiment={experiment}", "trainer=gpu"], tmp_path)
    assert cfg.trainer.precision == "16-mixed"


def test_explicit_bf16_on_an_emulating_cpu_is_kept_and_warned_about(monkeypatch, caplog):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="underpainting.runtime.precision"):
        precision.warn_if_emulated("bf16-mixed", "cpu")
        precision.warn_if_emulated("32-true", "cpu")
    assert len(caplog.records) == 1 and "trainer.precision=32-true" in caplog.records[0].getMessage()
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    caplog.clear()
    precision.warn_if_emulated("bf16-mixed", "cpu")
    assert not caplog.records
