"""The retry loop shared by ``@smart_retry`` and ``retrying``: sync and async.

Per failure it converts the outcome into the engine's features, asks the engine,
records what happened and sleeps; every delay, limit and refusal comes from the
engine. Locally it only counts (``max_attempts``), catches (``retry_on``,
``retry_if``) and measures time (``deadline`` is passed to the engine as
``deadline_ms``).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import sys
import time
from typing import Any, Awaitable, Callable, Dict, Iterator, NoReturn, Optional, Tuple, Type, Union

from . import testing as _testing
from ._engine import counter_for, default_engine, maybe_flush_all
from ._http import http_info
from ._native import Decision, Engine
from ._state import AttemptRecord, RetryCallState
from .errors import InvalidInputError, RetryError

__all__ = ["RetryPolicy", "Hook", "ExceptionTypes"]

logger = logging.getLogger("smartretry")

Hook = Callable[[RetryCallState], Any]
ExceptionTypes = Union[Type[BaseException], Tuple[Type[BaseException], ...]]

_job_ids = itertools.count(1)
#: Features the helpers read by duck typing from third-party objects: if the engine
#: rejects one (say an out-of-range status), decide without it rather than fail the call.
_FOREIGN_FIELDS = ("http_status", "retry_after")


class RetryPolicy:
    """The options of one ``@smart_retry`` or ``retrying`` (immutable once made)."""

    __slots__ = (
        "job_type",
        "tenant",
        "retry_on",
        "retry_if",
        "max_attempts",
        "deadline_ms",
        "timeout",
        "fallback",
        "idempotent",
        "on_retry",
        "before",
        "after",
        "on_give_up",
        "engine",
        "raise_retry_error",
        "counter",
        "priority",
    )

    def __init__(
        self,
        *,
        job_type: str,
        tenant: Optional[str],
        retry_on: ExceptionTypes,
        retry_if: Optional[Callable[[Any], bool]],
        max_attempts: Optional[int],
        deadline: Optional[float],
        timeout: Optional[float],
        fallback: Optional[Callable[[RetryCallState], Any]],
        idempotent: bool,
        on_retry: Optional[Hook],
        before: Optional[Hook],
        after: Optional[Hook],
        on_give_up: Optional[Hook],
        engine: Optional[Engine],
        raise_retry_error: bool,
        validate: bool = True,
        priority: Optional[str] = None,
    ) -> None:
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        if not isinstance(retry_on, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in retry_on
        ):
            raise TypeError("retry_on must be an exception type or a tuple of exception types")
        if timeout is not None:
            # A timeout we impose is a failure to retry, whatever retry_on lists.
            retry_on = retry_on + (asyncio.TimeoutError, TimeoutError)
        if max_attempts is not None and (isinstance(max_attempts, bool) or not isinstance(max_attempts, int)):
            raise TypeError("max_attempts must be an int")
        self.job_type = job_type
        self.tenant = tenant
        self.retry_on: Tuple[Type[BaseException], ...] = retry_on
        self.retry_if = retry_if
        self.max_attempts = max_attempts
        self.deadline_ms: Optional[int] = None if deadline is None else int(deadline * 1000)
        self.timeout = timeout
        self.fallback = fallback
        self.idempotent = idempotent
        self.on_retry = on_retry
        self.before = before
        self.after = after
        self.on_give_up = on_give_up
        self.engine = engine
        self.raise_retry_error = raise_retry_error
        #: How much the call matters when retry budgets bind (low/normal/high/critical).
        self.priority = priority
        self.counter = counter_for(job_type, tenant, engine)
        if validate:
            # The core validates the labels (job_type, tenant) now rather than at the
            # first failure: a preview of one attempt checks them and changes nothing.
            features: Dict[str, Any] = {"job_type": job_type, "attempt_number": 1}
            if tenant is not None:
                features["tenant"] = tenant
            if priority is not None:
                features["priority"] = priority
            self.get_engine().preview(features, 1)

    @property
    def fast(self) -> bool:
        """No per-attempt work besides the call itself (the success path can be lean)."""
        return self.before is None and self.after is None and self.retry_if is None and self.timeout is None

    def get_engine(self) -> Engine:
        return self.engine if self.engine is not None else default_engine()

    # -- one attempt ---------------------------------------------------------------

    def start(self, args: Tuple[Any, ...] = (), kwargs: Optional[Dict[str, Any]] = None) -> RetryCallState:
        return RetryCallState(self.job_type, self.tenant, args, kwargs)

    def retryable(self, exc: BaseException) -> bool:
        if not isinstance(exc, self.retry_on):
            return False
        return self.retry_if is None or bool(self.retry_if(exc))

    def succeeded(self, state: RetryCallState, result: Any) -> None:
        """A success: counted (first attempt) or recorded (a retry, so the engine learns)."""
        state.result = result
        state.exception = None
        if state.attempt_number == 1:
            if next(self.counter.count) & 1023 == 1023:
                self.counter.flush()
            if self.after is not None:
                state.history.append(AttemptRecord(1, 0, 0, state.elapsed_ms(), True, result=result))
            return
        now = state.elapsed_ms()
        state.history.append(
            AttemptRecord(
                state.attempt_number,
                state._delay_ms,
                state._attempt_started_ms,
                now - state._attempt_started_ms,
                True,
                result=result,
            )
        )
        self._record(state, True)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s succeeded on attempt %d after %.3fs", self.job_type, state.attempt_number, now / 1000
            )

    def failed(self, state: RetryCallState, exc: Optional[BaseException], result: Any = None) -> Optional[int]:
        """A failed attempt: record it, ask the engine. The delay in ms, or None to stop."""
        engine = self.engine if self.engine is not None else default_engine()
        now = int((time.monotonic() - state._t0) * 1000) + state._skipped_ms
        n = state.attempt_number
        status, retry_after = http_info(exc if exc is not None else result)
        error_class: Optional[str] = type(exc).__name__ if exc is not None else None
        error_code: Optional[str] = None
        if status is not None and error_class is not None:
            # The status names the learned key (service_unavailable, rate_limit…): one
            # HTTPError class carries many statuses. The class stays visible to policies.
            error_code, error_class = error_class, None
        started = state._attempt_started_ms
        record = AttemptRecord(
            n, state._delay_ms, started, now - started, False, exc, result, error_class or error_code, status
        )
        state.history.append(record)
        state.exception = exc
        state.result = result

        pending = self.counter.take()
        if pending:
            self.counter.report(pending)
        maybe_flush_all()
        job_id: Optional[str] = state.job_id
        if n == 1:
            state._first_failure_ms = now
            job_id = state.job_id = f"{self.job_type}#{next(_job_ids)}"
        else:
            self._record(state, False)

        features: Dict[str, Any] = {
            "job_type": self.job_type,
            "attempt_number": n,
            "job_id": job_id,
            "since_first_failure_ms": now - state._first_failure_ms,
        }
        if n > 1:
            features["since_last_failure_ms"] = now - state._last_failure_ms
        state._last_failure_ms = now
        if error_class is not None:
            features["error_class"] = error_class
        if error_code is not None:
            features["error_code"] = error_code
        if status is not None:
            features["http_status"] = status
        if retry_after is not None:
            features["retry_after"] = retry_after
        if self.tenant is not None:
            features["tenant"] = self.tenant
        if not self.idempotent:
            features["idempotent"] = False
        if self.priority is not None:
            features["priority"] = self.priority
        if self.deadline_ms is not None:
            features["deadline_ms"] = max(0, self.deadline_ms - state._first_failure_ms)

        if self.max_attempts is not None and n >= self.max_attempts:
            state._labels = (error_class, error_code, status)
            state.decision = None
            state.next_delay_ms = None
            state.give_up_reason = f"max_attempts={self.max_attempts} reached"
            return None
        state._failed_at_unix_ms = int(time.time() * 1000)
        try:
            decision = engine.decide(features)
        except InvalidInputError as e:
            decision = self._decide_without_foreign(engine, features, e)
        state._labels = (error_class, error_code, features.get("http_status"))
        record.decision = decision
        state.decision = decision
        if decision.should_retry:
            delay: int = decision.delay_ms
            state.next_delay_ms = delay
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "%s attempt %d failed (%s); retrying in %d ms [%s]: %s",
                    self.job_type,
                    n,
                    record.error_class or "result",
                    delay,
                    decision.method,
                    decision.rationale,
                )
            return delay
        state.next_delay_ms = None
        state.give_up_reason = decision.rationale
        return None

    def _decide_without_foreign(self, engine: Engine, features: Dict[str, Any], error: InvalidInputError) -> Decision:
        """Decide again without a duck-typed value the engine rejected (say status 999)."""
        while error.field in _FOREIGN_FIELDS and error.field in features:
            del features[error.field]
            try:
                return engine.decide(features)
            except InvalidInputError as e:
                error = e
        raise error

    def _record(self, state: RetryCallState, success: bool) -> None:
        """The outcome of a retry, under the key of the failure that led to it."""
        error_class, error_code, status = state._labels
        attempt: Dict[str, Any] = {
            "job_id": state.job_id,
            "job_type": self.job_type,
            "attempt_number": state.attempt_number,
            "success": success,
            "delay_ms": state._delay_ms,
            "since_first_failure_ms": state._attempt_started_ms - state._first_failure_ms,
        }
        if error_class is not None:
            attempt["error_class"] = error_class
        if error_code is not None:
            attempt["error_code"] = error_code
        if status is not None:
            attempt["http_status"] = status
        if self.tenant is not None:
            attempt["tenant"] = self.tenant
        (self.engine if self.engine is not None else default_engine()).record(attempt)

    def abandon(self, state: RetryCallState, exc: BaseException) -> None:
        """An exception that is not retried: it ends the call as it is, but a retry's
        outcome is still recorded (the engine learns it failed)."""
        state.exception = exc
        if state.attempt_number > 1:
            now = state.elapsed_ms()
            state.history.append(
                AttemptRecord(
                    state.attempt_number,
                    state._delay_ms,
                    state._attempt_started_ms,
                    now - state._attempt_started_ms,
                    False,
                    exc,
                    error_class=type(exc).__name__,
                )
            )
            self._record(state, False)

    def next_attempt(self, state: RetryCallState, delay_ms: int) -> None:
        """Bookkeeping once the delay has passed (or was skipped in testing mode)."""
        state.attempt_number += 1
        state._delay_ms = delay_ms
        state._attempt_started_ms = int((time.monotonic() - state._t0) * 1000) + state._skipped_ms

    # -- giving up -----------------------------------------------------------------

    def _give_up_message(self, state: RetryCallState) -> str:
        return (
            f"smartretry: {self.job_type} gave up after {state.attempt_number} attempt(s) "
            f"in {state.elapsed:.3f}s: {state.give_up_reason}"
        )

    def _raise(self, state: RetryCallState) -> NoReturn:
        exc = state.exception
        logger.warning("%s", self._give_up_message(state))
        if exc is None or self.raise_retry_error:
            raise RetryError(state) from exc
        _attach_history(exc, state, self._give_up_message(state))
        raise exc

    def give_up(self, state: RetryCallState) -> Any:
        """Retries are over: dead-letter hook, then the fallback's value or a raise."""
        if self.on_give_up is not None:
            self.on_give_up(state)
        if self.fallback is not None:
            logger.info("%s; using the fallback", self._give_up_message(state))
            return self.fallback(state)
        self._raise(state)

    async def give_up_async(self, state: RetryCallState) -> Any:
        if self.on_give_up is not None:
            await _maybe_await(self.on_give_up(state))
        if self.fallback is not None:
            logger.info("%s; using the fallback", self._give_up_message(state))
            return await _maybe_await(self.fallback(state))
        self._raise(state)

    # -- sleeping ------------------------------------------------------------------

    def _pauses(self, state: RetryCallState, delay_ms: int) -> Iterator[int]:
        """The pauses (ms) that wait out ``delay_ms``. One, unless the decision asks for
        check-ins (its downstream is down for every caller): then a pause per check-in,
        ending early once the engine says the downstream is back (probe-and-release)."""
        every = state.decision.check_in_ms if state.decision is not None else None
        if not every:
            yield delay_ms
            return
        engine = self.engine if self.engine is not None else default_engine()
        waited = 0
        while waited < delay_ms:
            pause = min(every, delay_ms - waited)
            yield pause
            waited += pause
            if waited < delay_ms and engine.released(self.job_type, state._failed_at_unix_ms):
                logger.info("%s is back: retrying after %d of the planned %d ms", self.job_type, waited, delay_ms)
                return

    def sleep(self, state: RetryCallState, delay_ms: int) -> None:
        if self.on_retry is not None:
            self.on_retry(state)
        if _testing._enabled:
            state._skipped_ms += delay_ms
            waited = delay_ms
        else:
            waited = 0
            for pause in self._pauses(state, delay_ms):
                time.sleep(pause / 1000.0)
                waited += pause
        self.next_attempt(state, waited)

    async def sleep_async(self, state: RetryCallState, delay_ms: int) -> None:
        if self.on_retry is not None:
            await _maybe_await(self.on_retry(state))
        if _testing._enabled:
            state._skipped_ms += delay_ms
            waited = delay_ms
            await asyncio.sleep(0)
        else:
            waited = 0
            for pause in self._pauses(state, delay_ms):
                await asyncio.sleep(pause / 1000.0)
                waited += pause
        self.next_attempt(state, waited)

    # -- whole loops -----------------------------------------------------------------

    def call(self, fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        """The general sync loop (hooks, result predicates)."""
        state = self.start(args, kwargs)
        while True:
            if self.before is not None:
                self.before(state)
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                if not self.retryable(exc):
                    self.abandon(state, exc)
                    raise
                delay = self.failed(state, exc)
            else:
                if self.retry_if is None or not self.retry_if(result):
                    self.succeeded(state, result)
                    if self.after is not None:
                        self.after(state)
                    return result
                delay = self.failed(state, None, result)
            if self.after is not None:
                self.after(state)
            if delay is None:
                return self.give_up(state)
            self.sleep(state, delay)

    def resume(
        self, fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any], first: BaseException
    ) -> Any:
        """The fast path's continuation after a failed first attempt (``fast`` policies only)."""
        if not isinstance(first, Exception):  # KeyboardInterrupt, SystemExit… are never retried
            raise first
        state = self.start(args, kwargs)
        exc = first
        while True:
            delay = self.failed(state, exc)
            if delay is None:
                return self.give_up(state)
            self.sleep(state, delay)
            try:
                result = fn(*args, **kwargs)
            except Exception as e:
                if not self.retryable(e):
                    self.abandon(state, e)
                    raise
                exc = e
            else:
                self.succeeded(state, result)
                return result

    async def call_async(
        self, fn: Callable[..., Awaitable[Any]], args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Any:
        """The general async loop (hooks, result predicates, per-attempt timeout)."""
        state = self.start(args, kwargs)
        while True:
            if self.before is not None:
                await _maybe_await(self.before(state))
            try:
                if self.timeout is None:
                    result = await fn(*args, **kwargs)
                else:
                    result = await asyncio.wait_for(fn(*args, **kwargs), self.timeout)
            except Exception as exc:
                if not self.retryable(exc):
                    self.abandon(state, exc)
                    raise
                delay = self.failed(state, exc)
            else:
                if self.retry_if is None or not self.retry_if(result):
                    self.succeeded(state, result)
                    if self.after is not None:
                        await _maybe_await(self.after(state))
                    return result
                delay = self.failed(state, None, result)
            if self.after is not None:
                await _maybe_await(self.after(state))
            if delay is None:
                return await self.give_up_async(state)
            await self.sleep_async(state, delay)

    async def resume_async(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: Tuple[Any, ...],
        kwargs: Dict[str, Any],
        first: BaseException,
    ) -> Any:
        if not isinstance(first, Exception):  # CancelledError, KeyboardInterrupt… are never retried
            raise first
        state = self.start(args, kwargs)
        exc = first
        while True:
            delay = self.failed(state, exc)
            if delay is None:
                return await self.give_up_async(state)
            await self.sleep_async(state, delay)
            try:
                result = await fn(*args, **kwargs)
            except Exception as e:
                if not self.retryable(e):
                    self.abandon(state, e)
                    raise
                exc = e
            else:
                self.succeeded(state, result)
                return result


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _attach_history(exc: BaseException, state: RetryCallState, summary: str) -> None:
    """The attempt history on the re-raised exception: ``__notes__`` (3.11+) and an attribute."""
    try:
        exc.smartretry_history = state.history  # type: ignore[attr-defined]
    except Exception:  # an exception type that refuses attributes
        pass
    if sys.version_info >= (3, 11):
        exc.add_note(summary)
        for record in state.history:
            exc.add_note(f"  {record.describe()}")
