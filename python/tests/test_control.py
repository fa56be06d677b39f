"""What gets retried (docs/errors.md) and tenacity-grade control: schedules, stops that
combine, async predicates, generators, statistics and logging, with a real engine."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, List

import pytest

import smartretry
from smartretry import (
    Engine,
    RetryCallState,
    smart_retry,
    stop_after_attempt,
    stop_after_delay,
    stop_when,
    wait_exponential,
    wait_fixed,
)


class Flaky:
    """Fails with `error` the first `failures` calls, then returns "ok"."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self, *args: Any) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


# -- the classification table ------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [TypeError("unsupported operand"), AttributeError("'NoneType' has no attribute 'id'"), NameError("nme")],
)
def test_a_programming_error_is_raised_after_one_attempt(engine: Engine, fast: None, error: Exception) -> None:
    flaky = Flaky(5, error)
    with pytest.raises(type(error)):
        smart_retry(engine=engine, job_type=f"bug_{type(error).__name__}")(flaky)()
    assert flaky.calls == 1


def test_a_network_error_is_retried(engine: Engine, fast: None) -> None:
    flaky = Flaky(2, ConnectionResetError("reset by peer"))
    assert smart_retry(engine=engine, job_type="net")(flaky)() == "ok"
    assert flaky.calls == 3


def test_naming_a_programming_error_in_retry_on_retries_it(engine: Engine, fast: None) -> None:
    flaky = Flaky(2, TypeError("a flaky C extension"))
    fn = smart_retry(engine=engine, job_type="listed", retry_on=(TypeError, ConnectionError))(flaky)
    assert fn() == "ok"
    assert flaky.calls == 3


def test_give_up_on_raises_after_one_attempt(engine: Engine, fast: None) -> None:
    flaky = Flaky(5, ConnectionResetError("reset"))
    with pytest.raises(ConnectionResetError):
        smart_retry(engine=engine, job_type="gu", give_up_on=ConnectionError)(flaky)()
    assert flaky.calls == 1


# -- schedules, stops ------------------------------------------------------------------


def test_a_call_schedule_sets_the_real_waits(engine: Engine) -> None:
    flaky = Flaky(2, ConnectionResetError("reset"))
    fn = smart_retry(engine=engine, job_type="sched", wait=wait_fixed(0.05))(flaky)
    start = time.monotonic()
    assert fn() == "ok"
    elapsed = time.monotonic() - start
    assert 0.1 <= elapsed < 1.0, elapsed
    decision = fn.statistics.last_decision  # type: ignore[attr-defined]
    assert decision.delay_ms == 50 and "own schedule" in decision.rationale


def test_a_call_schedule_grows_and_the_guardrails_bound_it(engine: Engine, fast: None) -> None:
    delays: List[int] = []
    fn = smart_retry(
        engine=engine,
        job_type="grow",
        max_attempts=3,
        wait=wait_exponential(base=0.1, multiplier=3),
        on_retry=lambda s: delays.append(s.next_delay_ms or 0),
    )(Flaky(2, ConnectionResetError("x")))
    assert fn() == "ok"
    assert delays == [100, 300]
    engine.update_guardrails({"max_delay_ms": 1000})
    capped: List[int] = []
    smart_retry(engine=engine, job_type="capped", wait=wait_fixed(60), on_retry=lambda s: capped.append(s.next_delay_ms or 0))(
        Flaky(1, ConnectionResetError("x"))
    )()
    assert capped == [1000]


def test_stops_combine_and_any_stops(engine: Engine, fast: None) -> None:
    flaky = Flaky(10, ConnectionResetError("x"))
    fn = smart_retry(engine=engine, job_type="stops", stop=stop_after_attempt(2) | stop_after_delay(3600))(flaky)
    with pytest.raises(ConnectionResetError):
        fn()
    assert flaky.calls == 2
    seen: List[int] = []

    def enough(state: RetryCallState) -> bool:
        seen.append(state.attempt_number)
        return isinstance(state.exception, ConnectionResetError) and state.attempt_number >= 1

    flaky2 = Flaky(10, ConnectionResetError("x"))
    with pytest.raises(ConnectionResetError) as err:
        smart_retry(engine=engine, job_type="stops2", stop=stop_after_attempt(5) | stop_when(enough))(flaky2)()
    assert flaky2.calls == 1 and seen == [1]
    assert err.value.smartretry_history[-1].decision is None  # type: ignore[attr-defined]
    flaky3 = Flaky(10, ConnectionResetError("x"))
    with pytest.raises(ConnectionResetError):
        smart_retry(engine=engine, job_type="stops3", max_attempts=4, stop_if=lambda s: s.attempt_number >= 2)(flaky3)()
    assert flaky3.calls == 2


# -- async predicates, generators -----------------------------------------------------


async def test_async_predicates_are_awaited(engine: Engine, fast: None) -> None:
    results = iter(["busy", "busy", "done"])

    async def is_busy(result: Any) -> bool:
        await asyncio.sleep(0)
        return bool(result == "busy")

    async def stop_never(state: RetryCallState) -> bool:
        await asyncio.sleep(0)
        return False

    @smart_retry(engine=engine, job_type="apred", retry_if=is_busy, stop_if=stop_never)
    async def poll() -> str:
        return next(results)

    assert await poll() == "done"
    assert poll.statistics.attempts == 3  # type: ignore[attr-defined]

    async def not_retryable(exc: BaseException) -> bool:
        return False

    calls = 0

    @smart_retry(engine=engine, job_type="apred2", retry_if=not_retryable)
    async def fails() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionResetError("x")

    with pytest.raises(ConnectionResetError):
        await fails()
    assert calls == 1


async def test_async_predicates_in_async_for(engine: Engine, fast: None) -> None:
    async def only_resets(exc: BaseException) -> bool:
        return isinstance(exc, ConnectionResetError)

    attempts = 0
    with pytest.raises(ValueError):
        async for attempt in smartretry.retrying(engine=engine, job_type="afor", retry_if=only_resets):
            with attempt:
                attempts += 1
                raise ConnectionResetError("x") if attempts < 2 else ValueError("no")
    assert attempts == 2
    with pytest.raises(smartretry.InvalidTypeError) as err:
        for _ in smartretry.retrying(engine=engine, retry_if=only_resets):
            pass
    assert err.value.field == "retry_if"


def test_async_predicates_on_a_sync_function_are_refused() -> None:
    async def pred(x: Any) -> bool:
        return True

    with pytest.raises(smartretry.InvalidTypeError) as err:
        smart_retry(retry_if=pred)(lambda: None)
    assert err.value.field == "retry_if"
    with pytest.raises(smartretry.InvalidTypeError) as err:
        smart_retry(stop=stop_when(pred))(lambda: None)
    assert err.value.field == "stop"


def test_generator_functions_are_refused_at_decoration() -> None:
    def rows() -> Any:
        yield 1

    async def arows() -> Any:
        yield 1

    for gen in (rows, arows):
        with pytest.raises(smartretry.InvalidTypeError, match="generator"):
            smart_retry(gen)


# -- statistics, logging -----------------------------------------------------------------


def test_statistics_of_a_decorated_function(engine: Engine, fast: None) -> None:
    flaky = Flaky(2, ConnectionResetError("x"))
    fn = smart_retry(engine=engine, job_type="stats")(flaky)
    assert fn() == "ok"
    for _ in range(5):
        fn()
    stats = fn.statistics  # type: ignore[attr-defined]
    assert (stats.calls, stats.attempts, stats.retries, stats.successes, stats.gave_up) == (6, 8, 2, 6, 0)
    assert stats.idle_for > 0 and stats.last_decision.should_retry
    bug = smart_retry(engine=engine, job_type="stats_bug")(Flaky(1, TypeError("x")))
    with pytest.raises(TypeError):
        bug()
    assert bug.statistics.to_dict()["gave_up"] == 1  # type: ignore[attr-defined]
    # Two functions of one job type keep their own statistics.
    twin = smart_retry(engine=engine, job_type="stats")(lambda: "ok")
    twin()
    assert twin.statistics.calls == 1 and fn.statistics.calls == 6  # type: ignore[attr-defined]


async def test_a_cancelled_wait_keeps_the_last_failure_as_its_cause(engine: Engine) -> None:
    waiting = asyncio.Event()
    failure = ConnectionResetError("reset by peer")

    @smart_retry(engine=engine, job_type="cancelled_wait", on_retry=lambda s: waiting.set())
    async def call() -> str:
        raise failure

    task = asyncio.ensure_future(call())
    await asyncio.wait_for(waiting.wait(), 5)
    await asyncio.sleep(0)  # the wait has begun
    task.cancel()
    with pytest.raises(asyncio.CancelledError) as err:
        await task
    assert err.value.__cause__ is failure


def test_one_structured_line_per_retry_and_quiet_permanent_give_ups(
    engine: Engine, fast: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="smartretry")
    smart_retry(engine=engine, job_type="logged")(Flaky(1, ConnectionResetError("x")))()
    retries = [r for r in caplog.records if getattr(r, "delay_ms", None) is not None]
    assert len(retries) == 1
    r: Any = retries[0]
    assert (r.levelno, r.job_type, r.attempt, r.method, r.error_class) == (
        logging.INFO, "logged", 1, "rules", "ConnectionResetError"
    )
    caplog.clear()
    with pytest.raises(TypeError):
        smart_retry(engine=engine, job_type="bug_logged")(Flaky(1, TypeError("x")))()
    assert [r.levelno for r in caplog.records if getattr(r, "gave_up", False)] == [logging.INFO]
    caplog.clear()

    class BadRequest(Exception):
        status_code = 400

    with pytest.raises(BadRequest):
        smart_retry(engine=engine, job_type="bad_request_logged")(Flaky(1, BadRequest("no")))()
    assert [r.levelno for r in caplog.records if getattr(r, "gave_up", False)] == [logging.INFO]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()
    with pytest.raises(ConnectionResetError):
        smart_retry(engine=engine, job_type="exhausted", max_attempts=2)(Flaky(5, ConnectionResetError("x")))()
    assert [r.levelno for r in caplog.records if getattr(r, "gave_up", False)] == [logging.WARNING]
