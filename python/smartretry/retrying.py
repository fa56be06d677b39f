"""The context-manager form, for code that cannot be a decorated function::

    for attempt in retrying(job_type="charge"):
        with attempt:
            charge(card)

    async for attempt in retrying(job_type="charge", timeout=2.0):
        with attempt:
            await charge(card)

A failure inside ``with attempt`` is caught (if ``retry_on``/``retry_if`` accept it),
the engine decides, the loop sleeps and runs the block again; a success ends the loop
(``return`` inside the block works too). When retries end, the last exception is
re-raised from the ``for`` line with the attempt history attached.
"""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType
from typing import Any, Callable, Optional, Type

from ._native import Engine
from ._options import check_sync_predicates, option_type_error
from ._retry import ExceptionTypes, Hook, RetryPolicy, _maybe_await
from ._state import RetryCallState
from .control import RetryStatistics, Stop, WaitDict
from .types import PriorityName

__all__ = ["retrying", "Retrying", "AttemptContext"]

_RUNNING, _SUCCEEDED, _FAILED, _ABANDONED = range(4)


class AttemptContext:
    """One attempt: use it as ``with attempt:`` around the code to retry."""

    __slots__ = ("_policy", "_state", "_outcome", "_exception", "_judged", "_timer", "_timed_out", "_task", "_is_async")

    def __init__(self, policy: RetryPolicy, state: RetryCallState, is_async: bool) -> None:
        self._policy = policy
        self._state = state
        self._outcome = _RUNNING
        self._exception: Optional[BaseException] = None
        #: Whether retry_if has seen the failure (see ``__exit__``).
        self._judged = True
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timed_out = False
        self._task: Optional["asyncio.Task[Any]"] = None
        self._is_async = is_async

    @property
    def attempt_number(self) -> int:
        return self._state.attempt_number

    @property
    def state(self) -> RetryCallState:
        return self._state

    def __enter__(self) -> "AttemptContext":
        timeout = self._policy.timeout
        if timeout is not None and self._is_async:
            task = asyncio.current_task()
            if task is not None:
                self._task = task
                self._timer = asyncio.get_running_loop().call_later(timeout, self._expire)
        return self

    def _expire(self) -> None:
        if self._outcome == _RUNNING and self._task is not None:
            self._timed_out = True
            self._task.cancel()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        if self._timer is not None:
            self._timer.cancel()
        policy, state = self._policy, self._state
        if exc is None:
            self._outcome = _SUCCEEDED
            policy.succeeded(state, None)
            return False
        timed_out = self._timed_out and isinstance(exc, asyncio.CancelledError)
        if timed_out:
            # Our own cancellation: the attempt timed out. Undo the cancel request.
            if self._task is not None and sys.version_info >= (3, 11):
                self._task.uncancel()
            exc = asyncio.TimeoutError(f"attempt {state.attempt_number} timed out after {policy.timeout}s")
        # In `async for`, an async retry_if is awaited by the loop: the failure is held
        # and raised from the `async for` line if the predicate refuses it.
        judge_later = self._is_async and policy.retry_if is not None
        if isinstance(exc, Exception) and (
            timed_out or (policy.caught(exc) if judge_later else policy.retryable(exc))
        ):
            self._outcome = _FAILED
            self._exception = exc
            self._judged = timed_out or not judge_later
            return True
        self._outcome = _ABANDONED
        if isinstance(exc, Exception):
            policy.abandon(state, exc)
        return False


class Retrying:
    """Iterate (``for`` or ``async for``) to get one :class:`AttemptContext` per attempt."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    @property
    def statistics(self) -> RetryStatistics:
        """What this loop has been through (see :class:`~smartretry.RetryStatistics`)."""
        return self.policy.statistics

    def __iter__(self) -> "_Attempts":
        if self.policy.timeout is not None:
            raise option_type_error("timeout", "needs `async for`: a sync attempt cannot be cancelled")
        check_sync_predicates(self.policy)
        return _Attempts(self.policy)

    def __aiter__(self) -> "_AsyncAttempts":
        return _AsyncAttempts(self.policy)


class _Attempts:
    __slots__ = ("_policy", "_state", "_current")

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._state = policy.start()
        self._current: Optional[AttemptContext] = None

    def __iter__(self) -> "_Attempts":
        return self

    def __next__(self) -> AttemptContext:
        policy, state, current = self._policy, self._state, self._current
        if current is not None:
            if current._outcome == _RUNNING:  # the block ran without `with attempt`
                current._outcome = _SUCCEEDED
                policy.succeeded(state, None)
            if policy.after is not None:
                policy.after(state)
            if current._outcome != _FAILED:
                raise StopIteration
            delay = policy.failed(state, current._exception)
            if delay is None:
                self._current = None
                policy.give_up(state)
                raise StopIteration  # a fallback answered: nothing more to run
            policy.sleep(state, delay)
        if policy.before is not None:
            policy.before(state)
        self._current = AttemptContext(policy, state, False)
        return self._current


class _AsyncAttempts:
    __slots__ = ("_policy", "_state", "_current")

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._state = policy.start()
        self._current: Optional[AttemptContext] = None

    def __aiter__(self) -> "_AsyncAttempts":
        return self

    async def __anext__(self) -> AttemptContext:
        policy, state, current = self._policy, self._state, self._current
        if current is not None:
            if current._outcome == _RUNNING:
                current._outcome = _SUCCEEDED
                policy.succeeded(state, None)
            if policy.after is not None:
                await _maybe_await(policy.after(state))
            if current._outcome != _FAILED:
                raise StopAsyncIteration
            failure = current._exception
            assert failure is not None
            if not current._judged and not await policy.retryable_async(failure):
                self._current = None
                policy.abandon(state, failure)
                raise failure
            stop = await policy.stop_requested_async(state, failure)
            delay = policy.failed(state, failure, stop=stop)
            if delay is None:
                self._current = None
                await policy.give_up_async(state)
                raise StopAsyncIteration
            await policy.sleep_async(state, delay)
        if policy.before is not None:
            await _maybe_await(policy.before(state))
        self._current = AttemptContext(policy, state, True)
        return self._current


def _caller_name(depth: int = 2) -> str:
    frame = sys._getframe(depth)
    code = frame.f_code
    name: str = getattr(code, "co_qualname", code.co_name)
    if name == "<module>":
        name = str(frame.f_globals.get("__name__", "__main__"))
    return name


def retrying(
    *,
    job_type: Optional[str] = None,
    tenant: Optional[str] = None,
    retry_on: ExceptionTypes = Exception,
    give_up_on: ExceptionTypes = (),
    retry_if: Optional[Callable[[BaseException], Any]] = None,
    max_attempts: Optional[int] = None,
    deadline: Optional[float] = None,
    timeout: Optional[float] = None,
    wait: Optional[WaitDict] = None,
    stop: Optional[Stop] = None,
    stop_if: Optional[Callable[[RetryCallState], Any]] = None,
    idempotent: bool = True,
    on_retry: Optional[Hook] = None,
    before: Optional[Hook] = None,
    after: Optional[Hook] = None,
    on_give_up: Optional[Hook] = None,
    engine: Optional[Engine] = None,
    raise_retry_error: bool = False,
    priority: Optional[PriorityName] = None,
) -> Retrying:
    """Retry a block of code: ``for attempt in retrying(...): with attempt: ...``.

    The options are those of :func:`~smartretry.smart_retry`, checked here (``job_type``
    defaults to the calling function's qualified name; ``retry_if`` sees exceptions
    only, and there is no ``fallback``: the loop has no value to return). Async
    predicates and ``timeout`` need ``async for``.
    """
    policy = RetryPolicy(
        {
            "job_type": job_type if job_type is not None else _caller_name(),
            "tenant": tenant,
            "retry_on": retry_on,
            "give_up_on": give_up_on,
            "retry_if": retry_if,
            "max_attempts": max_attempts,
            "deadline": deadline,
            "timeout": timeout,
            "wait": wait,
            "stop": stop,
            "stop_if": stop_if,
            "idempotent": idempotent,
            "on_retry": on_retry,
            "before": before,
            "after": after,
            "on_give_up": on_give_up,
            "engine": engine,
            "raise_retry_error": raise_retry_error,
            "priority": priority,
        },
        is_async=None,
    )
    return Retrying(policy)
