"""@smart_retry on sync and async functions and methods, with a real engine."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from typing import Any, List

import pytest

import smartretry
from smartretry import Engine, RetryCallState, RetryError, smart_retry



class Flaky:
    """Fails with `error` the first `failures` calls, then returns `value`."""

    def __init__(self, failures: int, error: Any = ConnectionResetError, value: Any = "ok") -> None:
        self.failures = failures
        self.error = error
        self.value = value
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error() if isinstance(self.error, type) else self.error
        return self.value


def test_sync_function_is_retried_until_it_succeeds(engine: Engine, fast: None) -> None:
    flaky = Flaky(2)
    fn = smart_retry(job_type="sync_job", engine=engine)(flaky)
    assert fn() == "ok"
    assert flaky.calls == 3
    stats = engine.stats("sync_job", "ConnectionResetError")
    assert stats.total_attempts == 2  # the two retries, learned under the exception's name
    assert stats.successful_retries == 1
    assert engine.metrics()["decisions_total"] == 2


async def test_async_function_is_retried_until_it_succeeds(engine: Engine, fast: None) -> None:
    flaky = Flaky(2, TimeoutError)

    @smart_retry(job_type="async_job", engine=engine)
    async def fn(x: int) -> str:
        await asyncio.sleep(0)
        return f"{flaky()}-{x}"

    assert asyncio.iscoroutinefunction(fn)
    assert await fn(7) == "ok-7"
    assert flaky.calls == 3
    assert engine.stats("async_job", "TimeoutError").total_attempts == 2


def test_bare_decorator_and_default_job_type(fresh_default_engine: Engine, fast: None) -> None:
    flaky = Flaky(1)

    @smart_retry
    def fetch() -> str:
        return str(flaky())

    assert fetch() == "ok"
    assert fetch.__name__ == "fetch"
    name = fetch.__qualname__
    assert name.endswith("<locals>.fetch")
    assert fresh_default_engine.stats(name, "ConnectionResetError").total_attempts == 1


async def test_methods_classmethods_staticmethods(engine: Engine, fast: None) -> None:
    class Client:
        def __init__(self) -> None:
            self.flaky = Flaky(1)

        @smart_retry(engine=engine)
        def get(self, key: str) -> str:
            return f"{self.flaky()}:{key}"

        @smart_retry(engine=engine)
        async def aget(self, key: str) -> str:
            return f"{self.flaky()}:{key}"

        @classmethod
        @smart_retry(engine=engine)
        def make(cls, flaky: Flaky) -> str:
            return f"{cls.__name__}:{flaky()}"

        @staticmethod
        @smart_retry(engine=engine)
        def util(flaky: Flaky) -> str:
            return str(flaky())

    client = Client()
    assert client.get("a") == "ok:a"
    assert await Client().aget("b") == "ok:b"
    assert Client.make(Flaky(1)) == "Client:ok"
    assert Client.util(Flaky(1)) == "ok"
    qualname = Client.get.__qualname__
    assert qualname.endswith("Client.get")
    assert engine.stats(qualname, "ConnectionResetError").total_attempts == 1


def test_retry_on_limits_what_is_retried(engine: Engine, fast: None) -> None:
    flaky = Flaky(1, KeyError)
    fn = smart_retry(engine=engine, retry_on=(ConnectionError, TimeoutError))(flaky)
    with pytest.raises(KeyError):
        fn()
    assert flaky.calls == 1
    flaky = Flaky(1, ConnectionResetError)
    assert smart_retry(engine=engine, retry_on=ConnectionError)(flaky)() == "ok"
    assert flaky.calls == 2


def test_non_retryable_exception_after_a_retry_is_recorded(engine: Engine, fast: None) -> None:
    errors = iter([ConnectionResetError(), KeyError("gone")])

    @smart_retry(engine=engine, job_type="mixed", retry_on=ConnectionError)
    def fn() -> None:
        raise next(errors)

    with pytest.raises(KeyError):
        fn()
    stats = engine.stats("mixed", "ConnectionResetError")
    assert stats.total_attempts == 1 and stats.failed_retries == 1


def test_retry_if_on_the_exception(engine: Engine, fast: None) -> None:
    def transient(outcome: object) -> bool:
        # retry_if sees the exception, or the value when the call returned.
        return isinstance(outcome, Exception) and "permanent" not in str(outcome)

    flaky = Flaky(1, ConnectionResetError("permanent"))
    with pytest.raises(ConnectionResetError):
        smart_retry(engine=engine, retry_if=transient)(flaky)()
    assert flaky.calls == 1
    flaky = Flaky(1, ConnectionResetError("transient"))
    assert smart_retry(engine=engine, retry_if=transient)(flaky)() == "ok"
    assert flaky.calls == 2


def test_retry_if_on_the_result(engine: Engine, fast: None) -> None:
    results = iter([None, None, 42])
    calls: List[int] = []

    @smart_retry(engine=engine, job_type="poll", retry_if=lambda r: r is None)
    def poll() -> Any:
        calls.append(1)
        return next(results)

    assert poll() == 42
    assert len(calls) == 3
    # A rejected result has no exception name: it is learned under its kind.
    assert engine.stats("poll", "unknown").total_attempts == 2


def test_rejected_results_until_the_end_raise_retry_error(engine: Engine, fast: None) -> None:
    @smart_retry(engine=engine, retry_if=lambda r: r == "not yet", max_attempts=3)
    def poll() -> str:
        return "not yet"

    with pytest.raises(RetryError) as err:
        poll()
    assert err.value.last_result == "not yet"
    assert err.value.last_exception is None
    assert len(err.value.history) == 3


def test_max_attempts_counts_the_first_attempt(engine: Engine, fast: None) -> None:
    flaky = Flaky(10)
    fn = smart_retry(engine=engine, max_attempts=2, job_type="limited")(flaky)
    with pytest.raises(ConnectionResetError) as err:
        fn()
    assert flaky.calls == 2
    history = err.value.smartretry_history  # type: ignore[attr-defined]
    assert [r.attempt_number for r in history] == [1, 2]
    assert history[0].decision.should_retry
    # The engine counts the caller's limit (failures that use no attempt would not count).
    assert not history[1].decision.should_retry
    assert "Attempt 2 of 2 failed: no attempts left" in history[1].decision.rationale
    if sys.version_info >= (3, 11):
        notes = err.value.__notes__
        assert "gave up after 2 attempt(s)" in notes[0]
        assert "Attempt 2 of 2 failed: no attempts left" in notes[0]
        assert notes[1].startswith("  attempt 1 failed with ConnectionResetError")


def test_the_engine_stops_programming_errors(engine: Engine, fast: None) -> None:
    flaky = Flaky(1, TypeError("'NoneType' object is not subscriptable"))
    fn = smart_retry(engine=engine, job_type="buggy")(flaky)
    with pytest.raises(TypeError, match="subscriptable") as err:
        fn()
    assert flaky.calls == 1
    decision = err.value.smartretry_history[0].decision  # type: ignore[attr-defined]
    assert decision is not None and not decision.should_retry
    assert "programming error" in decision.rationale
    if sys.version_info >= (3, 11):
        assert "programming error" in err.value.__notes__[0]


def test_a_domain_value_error_is_retried_like_any_failure(engine: Engine, fast: None) -> None:
    flaky = Flaky(2, ValueError("amount not settled yet"))
    assert smart_retry(engine=engine, job_type="settle")(flaky)() == "ok"
    assert flaky.calls == 3


def test_policy_max_attempts_ends_retries(engine: Engine, fast: None) -> None:
    flaky = Flaky(10, TimeoutError)
    fn = smart_retry(engine=engine, job_type="timeouts")(flaky)
    with pytest.raises(TimeoutError) as err:
        fn()
    assert flaky.calls == 6  # service_unavailable policy: 6 attempts
    assert "no attempts left" in str(err.value.smartretry_history[-1].decision.rationale)  # type: ignore[attr-defined]


def test_deadline_is_enforced_by_the_engine(engine: Engine, fast: None) -> None:
    flaky = Flaky(5, TimeoutError)
    fn = smart_retry(engine=engine, deadline=0.5)(flaky)  # the first delay is ~2 s
    with pytest.raises(TimeoutError) as err:
        fn()
    assert flaky.calls == 1
    decision = err.value.smartretry_history[0].decision  # type: ignore[attr-defined]
    assert "deadline" in decision.policy_guardrails
    fn = smart_retry(engine=engine, deadline=60)(Flaky(1, TimeoutError))
    assert fn() == "ok"


def test_fallback_value(engine: Engine, fast: None) -> None:
    seen: List[RetryCallState] = []

    def fallback(state: RetryCallState) -> str:
        seen.append(state)
        return "cached"

    flaky = Flaky(10, TimeoutError)
    fn = smart_retry(engine=engine, fallback=fallback, max_attempts=2)(flaky)
    assert fn(1, key="x") == "cached"
    state = seen[0]
    assert state.args == (1,) and state.kwargs == {"key": "x"}
    assert state.attempt_number == 2
    assert isinstance(state.exception, TimeoutError)
    assert state.give_up_reason is not None and "Attempt 2 of 2 failed: no attempts left" in state.give_up_reason


async def test_async_fallback_is_awaited(engine: Engine, fast: None) -> None:
    async def fallback(state: RetryCallState) -> str:
        await asyncio.sleep(0)
        return f"fallback after {len(state.history)}"

    @smart_retry(engine=engine, fallback=fallback, max_attempts=3)
    async def fn() -> str:
        raise ConnectionResetError()

    assert await fn() == "fallback after 3"


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (TimeoutError, False),  # may have taken effect
        (ConnectionResetError, False),
        (ConnectionRefusedError, True),  # never reached the server
    ],
)
def test_non_idempotent_calls_are_not_repeated_after_effectful_failures(
    engine: Engine, fast: None, error: type, retried: bool
) -> None:
    flaky = Flaky(1, error)
    fn = smart_retry(engine=engine, idempotent=False, job_type="charge")(flaky)
    if retried:
        assert fn() == "ok"
        assert flaky.calls == 2
    else:
        with pytest.raises(error) as err:
            fn()
        assert flaky.calls == 1
        decision = err.value.smartretry_history[0].decision  # type: ignore[attr-defined]
        assert decision.policy_guardrails == ["non_idempotent"]


def test_hooks_run_in_order(engine: Engine, fast: None) -> None:
    log: List[str] = []
    flaky = Flaky(2)
    fn = smart_retry(
        engine=engine,
        before=lambda s: log.append(f"before {s.attempt_number}"),
        after=lambda s: log.append(f"after {s.attempt_number} {'ok' if s.exception is None else 'failed'}"),
        on_retry=lambda s: log.append(f"retry in {s.next_delay_ms is not None and s.next_delay_ms > 0}"),
    )(flaky)
    assert fn() == "ok"
    assert log == [
        "before 1",
        "after 1 failed",
        "retry in True",
        "before 2",
        "after 2 failed",
        "retry in True",
        "before 3",
        "after 3 ok",
    ]


async def test_async_hooks_are_awaited(engine: Engine, fast: None) -> None:
    log: List[int] = []

    async def before(state: RetryCallState) -> None:
        await asyncio.sleep(0)
        log.append(state.attempt_number)

    flaky = Flaky(1)

    @smart_retry(engine=engine, before=before)
    async def fn() -> str:
        return str(flaky())

    assert await fn() == "ok"
    assert log == [1, 2]


def test_on_give_up_gets_the_full_history(engine: Engine, fast: None) -> None:
    dead_letters: List[RetryCallState] = []
    flaky = Flaky(10, TimeoutError)
    fn = smart_retry(engine=engine, job_type="dlq", on_give_up=dead_letters.append)(flaky)
    with pytest.raises(TimeoutError):
        fn("order-1")
    (state,) = dead_letters
    assert state.job_type == "dlq"
    assert state.args == ("order-1",)
    assert state.job_id is not None and state.job_id.startswith("dlq#")
    assert [r.attempt_number for r in state.history] == [1, 2, 3, 4, 5, 6]
    assert all(isinstance(r.exception, TimeoutError) for r in state.history)
    assert [r.decision.should_retry for r in state.history if r.decision] == [True] * 5 + [False]
    assert state.history[1].delay_ms == state.history[0].decision.delay_ms  # type: ignore[union-attr]
    assert state.give_up_reason and "no attempts left" in state.give_up_reason
    summary = state.history[0].to_dict()
    assert summary["decision"]["should_retry"] is True
    assert "TimeoutError" in summary["exception"]


def test_raise_retry_error_on_request(engine: Engine, fast: None) -> None:
    flaky = Flaky(10, TimeoutError)
    fn = smart_retry(engine=engine, raise_retry_error=True, max_attempts=2, job_type="rr")(flaky)
    with pytest.raises(RetryError) as err:
        fn()
    assert isinstance(err.value.__cause__, TimeoutError)
    assert isinstance(err.value.last_exception, TimeoutError)
    assert "rr: gave up after 2 attempt(s)" in str(err.value)


def test_logs_go_to_the_smartretry_logger(engine: Engine, fast: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="smartretry")
    fn = smart_retry(engine=engine, job_type="logged", max_attempts=2)(Flaky(10))
    with pytest.raises(ConnectionResetError):
        fn()
    messages = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert any(n == "smartretry" and lvl == "INFO" and "retrying in" in m for n, lvl, m in messages)
    assert any(n == "smartretry" and lvl == "WARNING" and "gave up" in m for n, lvl, m in messages)


def test_keyboard_interrupt_is_never_retried(engine: Engine, fast: None) -> None:
    flaky = Flaky(1, KeyboardInterrupt)
    fn = smart_retry(engine=engine, retry_on=BaseException)(flaky)
    with pytest.raises(KeyboardInterrupt):
        fn()
    assert flaky.calls == 1


def test_first_attempt_successes_feed_the_retry_budget(fast: None) -> None:
    """Successes are counted in Python and flushed in batches; the failure path flushes
    them first, so the budget that decides the retry knows about them."""
    engine = Engine(seed=1)
    engine.update_guardrails({"min_retries_per_sec": 0, "max_budget_percent": 50, "adaptive_throttle": False})
    failing = [True]

    @smart_retry(engine=engine, job_type="budgeted")
    def call() -> str:
        if failing[0]:
            failing[0] = False
            raise ConnectionResetError()
        return "ok"

    with pytest.raises(ConnectionResetError) as err:
        call()  # no successes seen: a retry would exceed 50 % of first attempts
    assert err.value.smartretry_history[0].decision.policy_guardrails == ["retry_budget"]  # type: ignore[attr-defined]
    for _ in range(10):
        assert call() == "ok"  # counted in Python, not reported yet
    failing[0] = True
    assert call() == "ok"  # flushed on the failure path, so the retry fits the budget


def test_successes_are_flushed_in_batches_and_on_demand() -> None:
    engine = Engine(seed=1)
    engine.update_guardrails({"min_retries_per_sec": 0, "max_budget_percent": 50, "adaptive_throttle": False})
    fn = smart_retry(engine=engine, job_type="batched")(lambda: "ok")
    for _ in range(2048):
        fn()
    smartretry.flush_successes()
    # 2048 successes + this failure: 1024 retries allowed; one is plenty.
    d = engine.decide({"job_type": "batched", "attempt_number": 1, "http_status": 503})
    assert d.should_retry


def test_labels_are_validated_by_the_engine_when_decorating(engine: Engine) -> None:
    with pytest.raises(smartretry.InvalidInputError) as err:
        smart_retry(engine=engine, job_type="x" * 300)(lambda: None)
    assert err.value.field == "job_type"
    with pytest.raises(smartretry.InvalidInputError) as err:
        smart_retry(engine=engine, tenant="a\nb")(lambda: None)
    assert err.value.field == "tenant"
    with pytest.raises(smartretry.InvalidTypeError) as type_err:
        smart_retry(engine=engine, retry_on=[ValueError, 3])(lambda: None)  # type: ignore[list-item]
    assert type_err.value.field == "retry_on"


def test_real_sleeping_waits_the_decided_delay() -> None:
    engine = Engine(seed=1)
    engine.add_policy(
        {"name": "quick", "job_type_patterns": ["quick"], "max_attempts": 3, "base_delay_ms": 30,
         "max_delay_ms": 30, "priority": 1000}
    )
    flaky = Flaky(1)
    fn = smart_retry(engine=engine, job_type="quick")(flaky)
    started = time.monotonic()
    assert fn() == "ok"
    assert time.monotonic() - started >= 0.029


async def test_async_real_sleeping_uses_asyncio_sleep() -> None:
    engine = Engine(seed=1)
    engine.add_policy(
        {"name": "quick", "job_type_patterns": ["quick"], "max_attempts": 3, "base_delay_ms": 30,
         "max_delay_ms": 30, "priority": 1000}
    )
    ticks: List[int] = []

    async def ticker() -> None:
        for i in range(1000):
            ticks.append(i)
            await asyncio.sleep(0.001)

    flaky = Flaky(1)

    @smart_retry(engine=engine, job_type="quick")
    async def fn() -> str:
        return str(flaky())

    task = asyncio.ensure_future(ticker())
    assert await fn() == "ok"
    task.cancel()
    assert len(ticks) > 1  # the event loop kept running while the retry waited


async def test_timeout_cancels_the_async_attempt(engine: Engine, fast: None) -> None:
    events: List[str] = []

    @smart_retry(engine=engine, job_type="slow", timeout=0.05)
    async def fn() -> str:
        if not events:
            try:
                events.append("started")
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                events.append("cancelled")
                raise
        return "fast"

    assert await fn() == "fast"
    assert events == ["started", "cancelled"]
    assert engine.stats("slow", "TimeoutError").total_attempts == 1


def test_timeout_needs_an_async_function(engine: Engine) -> None:
    with pytest.raises(TypeError, match="async"):
        smart_retry(engine=engine, timeout=1.0)(lambda: None)


def test_testing_mode_skips_sleeping_but_keeps_the_clock(engine: Engine) -> None:
    states: List[RetryCallState] = []
    flaky = Flaky(2, TimeoutError)
    fn = smart_retry(engine=engine, on_give_up=states.append, after=states.append)(flaky)
    assert not smartretry.is_testing()
    with smartretry.testing():
        assert smartretry.is_testing()
        assert fn() == "ok"
    assert not smartretry.is_testing()
    state = states[-1]
    waited = sum(r.delay_ms for r in state.history)
    assert waited >= 2000  # linear backoff from 2 s: skipped, but on the virtual clock
    assert state.elapsed * 1000 >= waited
    smartretry.set_testing(True)
    assert smartretry.is_testing()
    smartretry.set_testing(False)


# -- probe-and-release ---------------------------------------------------------------

BREAKER_OFF = {"strategy": {"circuit_breaker": {"enabled": False}, "guardrails": {"adaptive_throttle": False}}}


def outage(engine: Engine, job_type: str, failures: int = 12) -> None:
    """A downstream down for every caller: one call got through, then `failures` jobs failed."""
    engine.record_successes(job_type)
    for i in range(failures):
        engine.decide({"job_type": job_type, "attempt_number": 1, "http_status": 503, "job_id": f"{job_type}-{i}"})


class Unavailable(Exception):
    """An HTTP 503, as aiohttp raises it."""

    status = 503


def back_after(engine: Engine, job_type: str, seconds: float) -> threading.Timer:
    """Another job's call gets through `seconds` from now."""
    timer = threading.Timer(seconds, engine.record_successes, args=(job_type,))
    timer.start()
    return timer


def test_a_call_waiting_out_an_outage_is_released_when_calls_get_through() -> None:
    engine = Engine(seed=3, config=BREAKER_OFF)
    outage(engine, "webhook")
    flaky = Flaky(1, Unavailable)
    decisions: List[smartretry.Decision] = []
    fn = smart_retry(job_type="webhook", engine=engine, on_retry=lambda s: decisions.append(s.decision))(flaky)
    timer = back_after(engine, "webhook", 0.3)
    started = time.monotonic()
    assert fn() == "ok"
    waited_ms = (time.monotonic() - started) * 1000
    timer.join()
    assert flaky.calls == 2
    decision = decisions[0]
    assert decision.check_in_ms is not None and decision.delay_ms >= 2 * decision.check_in_ms, decision
    assert "check in every" in decision.rationale
    assert waited_ms < decision.delay_ms, "released before the planned delay"
    assert engine.metrics()["released_total"] == 1


async def test_an_async_call_is_released_too() -> None:
    engine = Engine(seed=3, config=BREAKER_OFF)
    outage(engine, "webhook")
    flaky = Flaky(1, Unavailable)
    decisions: List[smartretry.Decision] = []

    @smart_retry(job_type="webhook", engine=engine, on_retry=lambda s: decisions.append(s.decision))
    async def deliver() -> str:
        return str(flaky())

    timer = back_after(engine, "webhook", 0.3)
    started = time.monotonic()
    assert await deliver() == "ok"
    waited_ms = (time.monotonic() - started) * 1000
    timer.join()
    assert flaky.calls == 2
    assert decisions[0].check_in_ms is not None
    assert waited_ms < decisions[0].delay_ms
    assert engine.metrics()["released_total"] == 1


def test_released_names_a_bad_argument(engine: Engine) -> None:
    with pytest.raises(smartretry.InvalidInputError) as e:
        engine.released("", 0)
    assert e.value.field == "job_type"
    with pytest.raises(smartretry.InvalidInputError) as e:
        engine.released("webhook", -1)
    assert e.value.field == "failed_at_ms"
    assert engine.released("webhook", 0) is False
