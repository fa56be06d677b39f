"""The examples run as tests (at a faster time scale), so they cannot go stale."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_quickstart() -> None:
    # Its own process: it calls asyncio.run(), as a script does.
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")], check=True, capture_output=True, text=True
    ).stdout
    assert "retry=True" in out
    assert "synced after 3 attempts" in out
    assert "charged after 2 attempts" in out
    assert "bad input names the field: attempt_number" in out


def test_flaky_payments_learns_delays(capsys: pytest.CaptureFixture[str]) -> None:
    """Against the real local server: every payment is captured, and once the engine has
    seen the first wave, the Bayesian tier places retries and fewer attempts are needed.

    Real sleeping at half the example's time scale: at a fifth, a starved machine's
    scheduling lag (~0.1-0.2 s) was as long as the recoveries being learned and once
    made the first wave look faster than it was."""
    report = load("flaky_payments").run(scale=0.5, waves=(24, 12))
    first, later = report
    assert first["methods"].get("rules", 0) > 0
    assert later["methods"].get("bayesian", 0) > 0
    assert later["attempts_per_job"] < first["attempts_per_job"]
    out = capsys.readouterr().out
    assert "wave 2: 12 payments" in out
    assert "learned from" in out
