"""Overrides, context configuration, priority, health, lifecycle events and batch item
retries, through the Python package, against the real engine."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

import smartretry
from smartretry import Engine, EventDict, process_batch, process_batch_async

T0 = 1_700_000_000_000


class Unavailable(Exception):
    status_code = 503


class NotFound(Exception):
    status_code = 404


# ---- overrides -------------------------------------------------------------------


def test_an_operator_caps_a_queue_and_a_tenant_override_wins(engine: Engine) -> None:
    engine.add_override({"name": "cap-payments", "queue": "payments", "max_attempts": 2}, now_ms=T0)
    engine.add_override({"name": "acme", "tenant": "acme", "max_attempts": 4}, now_ms=T0)
    failure = {"job_type": "capture", "attempt_number": 2, "http_status": 503, "queue": "payments"}
    d = engine.decide(failure, now_ms=T0)
    assert not d.should_retry and d.policy_guardrails == ["override"]
    assert 'override "cap-payments" (queue=payments): max attempts 2' in d.rationale
    d = engine.decide({**failure, "tenant": "acme"}, now_ms=T0)
    assert d.should_retry and d.max_attempts == 4
    assert [o["name"] for o in engine.overrides(now_ms=T0)] == ["acme", "cap-payments"]
    assert engine.remove_override("acme")["max_attempts"] == 4
    with pytest.raises(smartretry.NotFoundError):
        engine.remove_override("acme")


def test_a_manual_delay_for_one_job(engine: Engine) -> None:
    replaced = engine.add_override({"name": "ctrl-o", "job_id": "job-7", "delay_ms": 45_000}, now_ms=T0)
    assert replaced is None
    d = engine.decide({"job_type": "export", "attempt_number": 1, "http_status": 503, "job_id": "job-7"}, now_ms=T0)
    assert (d.delay_ms, d.method, d.policy_guardrails) == (45_000, "guardrail", ["override"])
    assert engine.add_override({"name": "ctrl-o", "job_id": "job-7", "delay_ms": 1_000}, now_ms=T0)["delay_ms"] == 45_000


def test_bad_overrides_name_the_field(engine: Engine) -> None:
    with pytest.raises(smartretry.InvalidInputError) as e:
        engine.add_override({"name": "x", "max_attempts": 0})
    assert e.value.field == "max_attempts"
    with pytest.raises(smartretry.InvalidInputError) as e:
        engine.add_override({"name": "x", "queue": "q", "delay_ms": 5, "expires_at_ms": 1})
    assert e.value.field == "expires_at_ms"
    with pytest.raises(smartretry.InvalidInputError) as e:
        engine.add_override({"name": "x", "policy": "nope"})
    assert e.value.field == "policy"


# ---- context configuration and priority --------------------------------------------

#: The seed document's DEFAULT_RETRY_CONFIGS, shared with the Rust and Node tests.
DEFAULT_RETRY_CONFIGS: Dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "default_retry_configs.json").read_text()
)


def test_the_documents_default_retry_configs_load_and_apply() -> None:
    engine = Engine(seed=3, config={"contexts": DEFAULT_RETRY_CONFIGS})
    d = engine.decide({"job_type": "connection_pool.acquire_connection", "attempt_number": 1}, now_ms=T0)
    assert d.max_attempts == 5 and 250 <= d.delay_ms <= 500
    assert "settings of the connection_pool context" in d.rationale
    with pytest.raises(smartretry.ConfigError) as e:
        Engine(config={"contexts": {"pool": {"maxAttempts": 0}}})
    assert e.value.field == "contexts.pool.max_attempts"


def test_priority_reserves_the_budget_for_critical_work() -> None:
    engine = Engine(
        seed=3,
        config={
            "contexts": DEFAULT_RETRY_CONFIGS,
            "strategy": {"guardrails": {"min_retries_per_sec": 0, "max_budget_percent": 20, "per_tenant_limits": False}},
        },
    )
    engine.record_successes("sync", count=50, now_ms=T0)
    low = [engine.decide({"job_type": "sync", "attempt_number": 2, "http_status": 503, "priority": "low"}, now_ms=T0) for _ in range(6)]
    assert [d.should_retry for d in low] == [True] * 5 + [False]
    assert "low priority may use 5 of them" in low[-1].rationale
    critical = {"job_type": "campaign_orchestrator.run", "attempt_number": 2, "http_status": 503, "priority": "critical"}
    for _ in range(5):
        engine.decide({**critical, "job_type": "sync"}, now_ms=T0)
    assert not engine.decide({**critical, "job_type": "sync"}, now_ms=T0).should_retry
    d = engine.decide(critical, now_ms=T0)
    assert d.should_retry and "critical priority went past the global retry budget" in d.rationale


def test_the_decorator_passes_its_priority(fresh_default_engine: Engine, fast: None) -> None:
    # A budget of 3 retries a minute, of which low priority may use 1.
    fresh_default_engine.update_guardrails({"min_retries_per_sec": 0.05, "max_budget_percent": 0.0})
    calls: List[int] = []
    reasons: List[str] = []

    @smartretry.smart_retry(
        job_type="nightly", priority="low", on_give_up=lambda s: reasons.append(str(s.give_up_reason))
    )
    def nightly() -> None:
        calls.append(1)
        raise Unavailable("down")

    with pytest.raises(Unavailable):
        nightly()
    assert len(calls) == 2
    assert "low priority may use 1 of them" in reasons[0], reasons


# ---- health ---------------------------------------------------------------------------


def test_health_signals_stretch_delays_and_health_reports_the_downstream(engine: Engine) -> None:
    base = {"job_type": "api", "attempt_number": 1, "http_status": 503, "job_id": "h"}
    plain = engine.preview(base, 2, now_ms=T0).recommendations[0].delay_ms
    sick = engine.preview({**base, "health": {"error_rate": 0.9, "latency_ms": 4000.0}}, 2, now_ms=T0).recommendations[0]
    assert sick.delay_ms > plain
    assert "downstream health 18/100" in sick.rationale
    engine.decide({**base, "health": {"cpu": 95.0}}, now_ms=T0)
    report = engine.health("api", now_ms=T0)
    assert report["signals"] == {"cpu": 0.95} and report["signals_at_ms"] == T0
    assert report["score"] == 5.0 and report["delay_factor"] > 1.0


# ---- events ---------------------------------------------------------------------------


def test_callbacks_receive_the_lifecycle_and_unsubscribe_flushes(engine: Engine) -> None:
    seen: List[EventDict] = []
    unsubscribe = engine.on("*", seen.append)
    engine.decide({"job_type": "mail", "attempt_number": 1, "http_status": 503, "job_id": "m1"}, now_ms=T0)
    engine.record({"job_id": "m1", "job_type": "mail", "attempt_number": 2, "success": True}, now_ms=T0)
    engine.decide({"job_type": "mail", "attempt_number": 1, "http_status": 404, "job_id": "m2"}, now_ms=T0)
    unsubscribe()
    assert [e["type"] for e in seen] == ["retry_scheduled", "retry_succeeded", "gave_up", "guardrail_triggered"]
    assert seen[0]["job_id"] == "m1" and seen[0]["delay_ms"] > 0
    engine.decide({"job_type": "mail", "attempt_number": 1, "http_status": 503}, now_ms=T0)
    assert len(seen) == 4, "nothing after unsubscribing"
    counts = dict(engine.metrics()["events_total"])
    assert counts["retry_scheduled"] == 2 and counts["gave_up"] == 1


def test_one_kind_and_a_failing_callback_do_not_stop_delivery(engine: Engine) -> None:
    got: List[str] = []

    def flaky(event: EventDict) -> None:
        got.append(event["type"])
        if len(got) == 1:
            raise RuntimeError("callback bug")

    unsubscribe = engine.on("gave_up", flaky)
    for _ in range(2):
        engine.decide({"job_type": "x", "attempt_number": 1, "http_status": 404}, now_ms=T0)
    engine.decide({"job_type": "x", "attempt_number": 1, "http_status": 503}, now_ms=T0)
    unsubscribe()
    assert got == ["gave_up", "gave_up"]
    with pytest.raises(smartretry.InvalidInputError) as e:
        engine.on("exploded", flaky)
    assert e.value.field == "event"


def test_a_slow_subscriber_drops_events_instead_of_stalling(engine: Engine) -> None:
    with engine.subscribe(["retry_scheduled"], capacity=2) as sub:
        for i in range(10):
            engine.decide({"job_type": "bulk", "attempt_number": 1, "http_status": 503, "job_id": f"b{i}"}, now_ms=T0)
        assert len(sub.drain()) == 2 and sub.dropped == 8
        assert sub.get(timeout=0) is None
    assert engine.metrics()["events_dropped_total"] == 8
    assert sub.get(timeout=0) is None and sub.closed


# ---- batch item retries -------------------------------------------------------------


class Flaky:
    """Items fail `failures[item]` times before succeeding; counts every call."""

    def __init__(self, failures: Dict[int, int]) -> None:
        self.failures = dict(failures)
        self.calls: Dict[int, int] = {}

    def __call__(self, item: int) -> str:
        self.calls[item] = self.calls.get(item, 0) + 1
        if self.failures.get(item, 0) >= self.calls[item]:
            raise Unavailable(f"item {item}")
        if item == 13:
            raise NotFound("item 13 is gone")
        return f"done {item}"


def test_a_batch_retries_only_the_failed_items(fast: None) -> None:
    work = Flaky({3: 1, 7: 2, 9: 99})
    summary = process_batch(range(15), work, job_type="weekly_report", chunk_size=4)
    assert (summary.total, summary.succeeded, summary.retried, summary.dead_lettered) == (15, 13, 3, 2)
    assert summary.success_rate == pytest.approx(13 / 15)
    assert all(work.calls[i] == 1 for i in range(15) if i not in (3, 7, 9, 13)), "successes never re-run"
    assert (work.calls[3], work.calls[7]) == (2, 3)
    assert summary.results[7] == "done 7" and 9 not in summary.results
    dead = {d.index: d for d in summary.dead_letters}
    assert sorted(dead) == [9, 13]
    assert dead[13].attempts == 1 and "permanent" in dead[13].reason, dead[13].reason
    assert dead[9].attempts == 6 and "no attempts left" in dead[9].reason, dead[9].reason
    assert isinstance(dead[9].error, Unavailable)


def test_the_async_batch_runs_chunks_concurrently(fast: None) -> None:
    work = Flaky({2: 1, 5: 99})

    async def run(item: int) -> str:
        await asyncio.sleep(0)
        return work(item)

    summary = asyncio.run(process_batch_async(range(8), run, job_type="async_report", chunk_size=3))
    assert (summary.succeeded, summary.retried, summary.dead_lettered) == (7, 2, 1)
    assert work.calls[2] == 2 and work.calls[0] == 1
    assert summary.dead_letters[0].item == 5


def test_a_bad_chunk_size_is_refused() -> None:
    with pytest.raises(ValueError):
        process_batch([1], str, job_type="x", chunk_size=0)
