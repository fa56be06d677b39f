"""The context-manager form: `for attempt in retrying(...)` and `async for`."""

from __future__ import annotations

import asyncio
import sys
from typing import List

import pytest

from smartretry import Engine, RetryCallState, RetryError, retrying


def test_sync_block_is_retried_until_it_succeeds(engine: Engine, fast: None) -> None:
    calls = 0
    for attempt in retrying(job_type="cm_sync", engine=engine):
        with attempt:
            calls += 1
            assert attempt.attempt_number == calls
            if calls < 3:
                raise ConnectionResetError()
    assert calls == 3
    stats = engine.stats("cm_sync", "ConnectionResetError")
    assert stats.total_attempts == 2 and stats.successful_retries == 1


async def test_async_block_is_retried_until_it_succeeds(engine: Engine, fast: None) -> None:
    calls = 0
    async for attempt in retrying(job_type="cm_async", engine=engine):
        with attempt:
            calls += 1
            await asyncio.sleep(0)
            if calls < 2:
                raise TimeoutError()
    assert calls == 2
    assert engine.stats("cm_async", "TimeoutError").successful_retries == 1


def test_return_inside_the_block_records_the_success(engine: Engine, fast: None) -> None:
    calls: List[int] = []

    def work() -> str:
        for attempt in retrying(job_type="cm_return", engine=engine):
            with attempt:
                calls.append(1)
                if len(calls) == 1:
                    raise ConnectionResetError()
                return "done"
        raise AssertionError("unreachable")

    assert work() == "done"
    assert engine.stats("cm_return", "ConnectionResetError").successful_retries == 1


def test_default_job_type_is_the_calling_function(engine: Engine, fast: None) -> None:
    r = retrying(engine=engine)
    assert r.policy.job_type.endswith("test_default_job_type_is_the_calling_function")


def test_giving_up_raises_the_last_exception_from_the_loop(engine: Engine, fast: None) -> None:
    calls = 0
    given_up: List[RetryCallState] = []
    with pytest.raises(TimeoutError) as err:
        for attempt in retrying(job_type="cm_fail", engine=engine, max_attempts=2, on_give_up=given_up.append):
            with attempt:
                calls += 1
                raise TimeoutError(f"slow {calls}")
    assert calls == 2
    assert str(err.value) == "slow 2"
    assert len(given_up[0].history) == 2
    if sys.version_info >= (3, 11):
        assert "cm_fail gave up after 2 attempt(s)" in err.value.__notes__[0]


def test_retry_error_on_request(engine: Engine, fast: None) -> None:
    with pytest.raises(RetryError) as err:
        for attempt in retrying(engine=engine, max_attempts=2, raise_retry_error=True):
            with attempt:
                raise ConnectionResetError()
    assert isinstance(err.value.__cause__, ConnectionResetError)


def test_exceptions_outside_retry_on_propagate_at_once(engine: Engine, fast: None) -> None:
    calls = 0
    with pytest.raises(KeyError):
        for attempt in retrying(engine=engine, retry_on=ConnectionError):
            with attempt:
                calls += 1
                raise KeyError("x")
    assert calls == 1


def test_retry_if_filters_exceptions(engine: Engine, fast: None) -> None:
    calls = 0
    with pytest.raises(ConnectionResetError):
        for attempt in retrying(engine=engine, retry_if=lambda e: "retry" in str(e)):
            with attempt:
                calls += 1
                raise ConnectionResetError("fatal")
    assert calls == 1


def test_hooks(engine: Engine, fast: None) -> None:
    log: List[str] = []
    calls = 0
    for attempt in retrying(
        engine=engine,
        before=lambda s: log.append(f"before {s.attempt_number}"),
        after=lambda s: log.append(f"after {s.attempt_number}"),
        on_retry=lambda s: log.append("retry"),
    ):
        with attempt:
            calls += 1
            if calls == 1:
                raise ConnectionResetError()
    assert log == ["before 1", "after 1", "retry", "before 2", "after 2"]


def test_deadline_and_idempotence_reach_the_engine(engine: Engine, fast: None) -> None:
    calls = 0
    with pytest.raises(TimeoutError) as err:
        for attempt in retrying(engine=engine, deadline=0.1):
            with attempt:
                calls += 1
                raise TimeoutError()
    assert calls == 1
    assert "deadline" in err.value.smartretry_history[0].decision.policy_guardrails  # type: ignore[attr-defined]
    with pytest.raises(TimeoutError) as err:
        for attempt in retrying(engine=engine, idempotent=False):
            with attempt:
                raise TimeoutError()
    assert err.value.smartretry_history[0].decision.policy_guardrails == ["non_idempotent"]  # type: ignore[attr-defined]


async def test_timeout_cancels_the_async_attempt(engine: Engine, fast: None) -> None:
    events: List[str] = []
    async for attempt in retrying(job_type="cm_slow", engine=engine, timeout=0.05):
        with attempt:
            if not events:
                try:
                    events.append("started")
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    events.append("cancelled")
                    raise
            events.append("finished")
    assert events == ["started", "cancelled", "finished"]
    assert engine.stats("cm_slow", "TimeoutError").successful_retries == 1
    task = asyncio.current_task()
    assert task is not None and not task.cancelled()
    if sys.version_info >= (3, 11):
        assert task.cancelling() == 0  # our cancel request was withdrawn
    await asyncio.sleep(0)  # and the task is not cancelled later


async def test_outside_cancellation_is_not_swallowed(engine: Engine, fast: None) -> None:
    started = asyncio.Event()

    async def worker() -> None:
        async for attempt in retrying(engine=engine, timeout=10):
            with attempt:
                started.set()
                await asyncio.sleep(30)

    task = asyncio.ensure_future(worker())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_sync_timeout_is_refused(engine: Engine) -> None:
    with pytest.raises(TypeError, match="async for"):
        for _ in retrying(engine=engine, timeout=1):
            pass


def test_a_retrying_object_can_be_iterated_again(engine: Engine, fast: None) -> None:
    r = retrying(job_type="again", engine=engine)
    for _ in range(2):
        calls = 0
        for attempt in r:
            with attempt:
                calls += 1
                if calls == 1:
                    raise ConnectionResetError()
        assert calls == 2
