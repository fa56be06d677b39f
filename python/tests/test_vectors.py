"""The shared conformance vectors (tests/vectors/*.json), run through the Python binding
with the same semantics as the Rust runner (core/tests/vectors.rs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

import smartretry
from smartretry import Engine

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors"
FILES = sorted(VECTORS.glob("*.json"))


def test_vectors_are_present() -> None:
    assert len(FILES) >= 4, FILES


def matches(expected: Any, actual: Any, path: str, errors: List[str]) -> None:
    """Every key of `expected` matches in `actual`; numbers within 1e-9."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            errors.append(f"{path}: expected an object, got {actual!r}")
            return
        for key, value in expected.items():
            if key == "rationale_contains":
                rationale = actual.get("rationale", "")
                if value not in rationale:
                    errors.append(f"{path}.rationale {rationale!r} lacks {value!r}")
                continue
            if key not in actual:
                errors.append(f"{path}.{key} missing")
            else:
                matches(value, actual[key], f"{path}.{key}", errors)
    elif isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            errors.append(f"{path}: expected {expected!r}, got {actual!r}")
            return
        for i, (e, a) in enumerate(zip(expected, actual)):
            matches(e, a, f"{path}[{i}]", errors)
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if type(actual) is not type(expected) or actual != expected:
            errors.append(f"{path}: expected {expected!r}, got {actual!r}")
    elif isinstance(expected, (int, float)):
        if isinstance(actual, bool) or not isinstance(actual, (int, float)) or abs(expected - actual) > 1e-9:
            errors.append(f"{path}: expected {expected!r}, got {actual!r}")
    elif expected != actual:
        errors.append(f"{path}: expected {expected!r}, got {actual!r}")


def run_step(engine: Engine, step: Dict[str, Any], now: int) -> Any:
    op = step["op"]
    if op == "decide":
        return engine.decide(step["features"], now_ms=now).to_dict()
    if op == "record":
        return engine.record(step["attempt"], now_ms=now)
    if op == "preview":
        return engine.preview(step["features"], max_attempts=step.get("max_attempts", 5), now_ms=now).to_dict()
    if op == "stats":
        return engine.stats(
            step.get("job_type", ""), step.get("error_class", ""), window_ms=step.get("window_ms"), now_ms=now
        ).to_dict()
    if op == "emergency_stop":
        return engine.emergency_stop(step.get("on", True))
    if op == "update_guardrails":
        return engine.update_guardrails(step["guardrails"])
    if op == "add_policy":
        return engine.add_policy(step["policy"])
    if op == "remove_policy":
        return engine.remove_policy(step.get("name", ""))
    if op == "record_successes":
        return engine.record_successes(step.get("job_type", ""), step.get("tenant"), step.get("count", 1), now)
    if op == "policies":
        return engine.policies()
    if op == "guardrails":
        return engine.guardrails()
    if op == "add_override":
        return engine.add_override(step["override"], now_ms=now)
    if op == "remove_override":
        return engine.remove_override(step.get("name", ""))
    if op == "overrides":
        return engine.overrides(now_ms=now)
    if op == "health":
        return engine.health(step.get("job_type", ""), now_ms=now)
    raise AssertionError(f"unknown op {op!r}")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector(path: Path) -> None:
    vector = json.loads(path.read_text())
    engine = Engine(seed=vector.get("seed", 0), config=vector.get("config"))
    failures: List[str] = []
    for i, step in enumerate(vector["steps"]):
        at = f"{vector['name']} step {i} ({step['op']})"
        now = step["now_ms"]
        result: Any = None
        error: Any = None
        for _ in range(step.get("repeat", 1)):
            try:
                result, error = run_step(engine, step, now), None
            except smartretry.Error as e:
                result, error = None, e
            now += step.get("step_ms", 0)
        expected_error = step.get("expect_error")
        if error is not None and expected_error is not None:
            matches(expected_error, {"kind": error.kind, "field": error.field}, at, failures)
        elif error is not None:
            failures.append(f"{at}: unexpected error {error!r}")
        elif expected_error is not None:
            failures.append(f"{at}: expected an error, got {result!r}")
        elif "expect" in step:
            matches(step["expect"], result, at, failures)
    assert not failures, "\n".join(failures)
