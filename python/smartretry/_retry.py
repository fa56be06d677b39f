"""The retry loop shared by ``@smart_retry`` and ``retrying``: sync and async.

Per failure it converts the outcome into the engine's features, asks the engine,
records what happened and sleeps; every delay, limit and refusal comes from the
engine, ``max_attempts`` included (the engine counts them). Locally it catches (``retry_on``,
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
from ._engine import SuccessCounter, counter_for, default_engine, maybe_flush_all
from ._http import http_info
from ._native import Decision, Engine
from ._options import check, exception_types
from ._state import AttemptRecord, RetryCallState
from .control import RetryStatistics, Stop
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
    """The options of one ``@smart_retry`` or ``retrying`` (immutable once made), checked
    by the engine's options contract when made (see :mod:`smartretry._options`)."""

    __slots__ = (
        "job_type",
        "tenant",
        "retry_on",
        "give_up_on",
        "expected",
        "retry_if",
        "stop_if",
        "max_attempts",
        "deadline_ms",
        "timeout",
        "backoff",
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
        "statistics",
    )

    def __init__(self, options: Dict[str, Any], *, is_async: Optional[bool], own_counter: bool = False) -> None:
        """``options``: what the caller gave, by the public names (``wait``, ``stop``…);
        ``is_async``: whether the function is a coroutine function (``None``: either);
        ``own_counter``: count this helper's successes apart (a decorated function's
        statistics), not with every helper of its job type."""
        checked = check(options, is_async=is_async)
        retry_on = exception_types("retry_on", options.get("retry_on", Exception))
        #: Types the caller named to retry: such a failure is not taken for a bug.
        self.expected = tuple(t for t in retry_on if t not in (Exception, BaseException))
        self.timeout: Optional[float] = None
        if checked.get("timeout_ms") is not None:
            self.timeout = checked["timeout_ms"] / 1000.0
            # A timeout we impose is a failure to retry, whatever retry_on lists.
            retry_on = retry_on + (asyncio.TimeoutError, TimeoutError)
        self.retry_on: Tuple[Type[BaseException], ...] = retry_on
        self.give_up_on = exception_types("give_up_on", options.get("give_up_on") or ())
        stop: Optional[Stop] = options.get("stop")
        self.job_type: str = checked["job_type"]
        self.tenant: Optional[str] = checked.get("tenant")
        self.retry_if = options.get("retry_if")
        self.stop_if: Tuple[Callable[[RetryCallState], Any], ...] = tuple(
            p for p in (options.get("stop_if"),) + (stop.predicates if stop else ()) if p is not None
        )
        self.max_attempts: Optional[int] = _least(checked.get("max_attempts"), stop.max_attempts if stop else None)
        self.deadline_ms: Optional[int] = _least(checked.get("deadline_ms"), stop.deadline_ms if stop else None)
        #: The call's own schedule, as the engine takes it (``Features.backoff``).
        self.backoff: Optional[Dict[str, Any]] = checked.get("backoff")
        self.fallback = options.get("fallback")
        self.idempotent: bool = checked.get("idempotent", True)
        self.on_retry = options.get("on_retry")
        self.before = options.get("before")
        self.after = options.get("after")
        self.on_give_up = options.get("on_give_up")
        self.engine: Optional[Engine] = options.get("engine")
        self.raise_retry_error = bool(options.get("raise_retry_error"))
        #: How much the call matters when retry budgets bind (low/normal/high/critical).
        self.priority: Optional[str] = checked.get("priority")
        self.counter = (
            SuccessCounter(self.job_type, self.tenant, self.engine)
            if own_counter
            else counter_for(self.job_type, self.tenant, self.engine)
        )
        self.statistics = RetryStatistics(self.counter.total)

    @property
    def fast(self) -> bool:
        """No per-attempt work besides the call itself (the success path can be lean)."""
        return (
            self.before is None
            and self.after is None
            and self.retry_if is None
            and self.timeout is None
            and not self.stop_if
            and not self.give_up_on
        )

    def get_engine(self) -> Engine:
        return self.engine if self.engine is not None else default_engine()

    # -- one attempt ---------------------------------------------------------------

    def start(self, args: Tuple[Any, ...] = (), kwargs: Optional[Dict[str, Any]] = None) -> RetryCallState:
        return RetryCallState(self.job_type, self.tenant, args, kwargs)

    def caught(self, exc: BaseException) -> bool:
        """Whether ``retry_on`` / ``give_up_on`` let this failure be retried (``retry_if`` aside)."""
        return isinstance(exc, self.retry_on) and not (self.give_up_on and isinstance(exc, self.give_up_on))

    def retryable(self, exc: BaseException) -> bool:
        return self.caught(exc) and (self.retry_if is None or bool(self.retry_if(exc)))

    async def retryable_async(self, exc: BaseException) -> bool:
        """:meth:`retryable`, awaiting an async ``retry_if``."""
        return self.caught(exc) and (self.retry_if is None or bool(await _maybe_await(self.retry_if(exc))))

    def stop_requested(self, state: RetryCallState) -> bool:
        """Whether a ``stop_if`` / ``stop_when`` predicate says stop (sync code)."""
        return any(bool(p(state)) for p in self.stop_if)

    async def stop_requested_async(
        self, state: RetryCallState, exc: Optional[BaseException], result: Any = None
    ) -> bool:
        """:meth:`stop_requested` in async code, awaiting async predicates; they see this
        failure as ``state.exception`` / ``state.result``."""
        if not self.stop_if:
            return False
        state.exception, state.result = exc, result
        for p in self.stop_if:
            if await _maybe_await(p(state)):
                return True
        return False

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
        with self.statistics._lock:
            self.statistics.retried_successes += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s succeeded on attempt %d after %.3fs", self.job_type, state.attempt_number, now / 1000
            )

    def failed(
        self, state: RetryCallState, exc: Optional[BaseException], result: Any = None, stop: Optional[bool] = None
    ) -> Optional[int]:
        """A failed attempt: record it, ask the engine. The delay in ms, or None to stop.
        ``stop``: what the stop predicates said (async code awaits them first); ``None``:
        ask them here."""
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
            with self.statistics._lock:
                self.statistics.failed_first += 1
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
        if self.max_attempts is not None:
            # The engine counts: retries a rate limit refused with a known reset, and
            # failures while the downstream is down for everyone, do not use one up.
            features["max_attempts"] = self.max_attempts
        if self.deadline_ms is not None:
            features["deadline_ms"] = max(0, self.deadline_ms - state._first_failure_ms)
        if self.backoff is not None:
            features["backoff"] = self.backoff
        if exc is not None and self.expected and isinstance(exc, self.expected):
            features["expected"] = True

        if stop is None and self.stop_if:
            stop = self.stop_requested(state)
        if stop:
            state._labels = (error_class, error_code, status)
            state.decision = None
            state.next_delay_ms = None
            state.give_up_reason = "stop_if said stop"
            return None
        state._failed_at_unix_ms = int(time.time() * 1000)
        try:
            decision = engine.decide(features)
        except InvalidInputError as e:
            decision = self._decide_without_foreign(engine, features, e)
        state._labels = (error_class, error_code, features.get("http_status"))
        record.decision = decision
        state.decision = decision
        self.statistics.last_decision = decision
        if decision.should_retry:
            delay: int = decision.delay_ms
            state.next_delay_ms = delay
            if logger.isEnabledFor(logging.INFO):
                # One structured line per retry: handlers can route or format the fields.
                logger.info(
                    "%s attempt %d failed (%s); retrying in %d ms [%s]: %s",
                    self.job_type,
                    n,
                    record.error_class or "result",
                    delay,
                    decision.method,
                    decision.rationale,
                    extra={
                        "job_type": self.job_type,
                        "attempt": n,
                        "delay_ms": delay,
                        "method": decision.method,
                        "error_class": record.error_class,
                    },
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
        with self.statistics._lock:
            if state.attempt_number == 1:
                self.statistics.failed_first += 1
            self.statistics.gave_up += 1
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
        with self.statistics._lock:
            self.statistics.retries += 1
            self.statistics.idle_ms += delay_ms
        state._attempt_started_ms = int((time.monotonic() - state._t0) * 1000) + state._skipped_ms

    # -- giving up -----------------------------------------------------------------

    def _give_up_message(self, state: RetryCallState) -> str:
        return (
            f"smartretry: {self.job_type} gave up after {state.attempt_number} attempt(s) "
            f"in {state.elapsed:.3f}s: {state.give_up_reason}"
        )

    def _log_give_up(self, state: RetryCallState, suffix: str = "") -> None:
        """After retries, a WARNING; a failure never retried (one attempt: a 400, a bug,
        a local stop) reaches the caller as it is, so only INFO."""
        with self.statistics._lock:
            self.statistics.gave_up += 1
        level = logging.WARNING if state.attempt_number > 1 else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(
                level,
                "%s%s",
                self._give_up_message(state),
                suffix,
                extra={"job_type": self.job_type, "attempt": state.attempt_number, "gave_up": True},
            )

    def _raise(self, state: RetryCallState) -> NoReturn:
        exc = state.exception
        if exc is None or self.raise_retry_error:
            raise RetryError(state) from exc
        _attach_history(exc, state, self._give_up_message(state))
        raise exc

    def give_up(self, state: RetryCallState) -> Any:
        """Retries are over: dead-letter hook, then the fallback's value or a raise."""
        if self.on_give_up is not None:
            self.on_give_up(state)
        if self.fallback is not None:
            self._log_give_up(state, "; using the fallback")
            return self.fallback(state)
        self._log_give_up(state)
        self._raise(state)

    async def give_up_async(self, state: RetryCallState) -> Any:
        if self.on_give_up is not None:
            await _maybe_await(self.on_give_up(state))
        if self.fallback is not None:
            self._log_give_up(state, "; using the fallback")
            return await _maybe_await(self.fallback(state))
        self._log_give_up(state)
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
        try:
            if _testing._enabled:
                state._skipped_ms += delay_ms
                waited = delay_ms
                await asyncio.sleep(0)
            else:
                waited = 0
                for pause in self._pauses(state, delay_ms):
                    await asyncio.sleep(pause / 1000.0)
                    waited += pause
        except asyncio.CancelledError as cancelled:
            # A wait cancelled: the failure being waited out is its cause, as Node's abort
            # and Go's context error keep it (the cancellation itself still propagates).
            if cancelled.__cause__ is None and state.exception is not None:
                cancelled.__cause__ = state.exception
            raise
        self.next_attempt(state, waited)

def _least(a: Optional[int], b: Optional[int]) -> Optional[int]:
    return b if a is None else a if b is None else min(a, b)


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
