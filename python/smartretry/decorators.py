"""``@smart_retry``: retries decided by the engine, on sync and async functions and methods."""

from __future__ import annotations

import functools
import inspect
from functools import partial
from typing import Any, Awaitable, Callable, Dict, Optional, TypeVar, Union, cast, overload

from . import _loops
from ._native import Engine
from ._options import option_type_error, precheck
from ._retry import ExceptionTypes, Hook, RetryPolicy
from ._state import RetryCallState
from .control import Stop, WaitDict
from .types import PriorityName

__all__ = ["smart_retry"]

F = TypeVar("F", bound=Callable[..., Any])


@overload
def smart_retry(fn: F, /) -> F: ...


@overload
def smart_retry(
    *,
    job_type: Optional[str] = None,
    tenant: Optional[str] = None,
    retry_on: ExceptionTypes = Exception,
    give_up_on: ExceptionTypes = (),
    retry_if: Optional[Callable[[Any], Any]] = None,
    max_attempts: Optional[int] = None,
    deadline: Optional[float] = None,
    timeout: Optional[float] = None,
    wait: Optional[WaitDict] = None,
    stop: Optional[Stop] = None,
    stop_if: Optional[Callable[[RetryCallState], Any]] = None,
    fallback: Optional[Callable[[RetryCallState], Any]] = None,
    idempotent: bool = True,
    on_retry: Optional[Hook] = None,
    before: Optional[Hook] = None,
    after: Optional[Hook] = None,
    on_give_up: Optional[Hook] = None,
    engine: Optional[Engine] = None,
    raise_retry_error: bool = False,
    priority: Optional[PriorityName] = None,
) -> Callable[[F], F]: ...


def smart_retry(
    fn: Optional[F] = None,
    /,
    *,
    job_type: Optional[str] = None,
    tenant: Optional[str] = None,
    retry_on: ExceptionTypes = Exception,
    give_up_on: ExceptionTypes = (),
    retry_if: Optional[Callable[[Any], Any]] = None,
    max_attempts: Optional[int] = None,
    deadline: Optional[float] = None,
    timeout: Optional[float] = None,
    wait: Optional[WaitDict] = None,
    stop: Optional[Stop] = None,
    stop_if: Optional[Callable[[RetryCallState], Any]] = None,
    fallback: Optional[Callable[[RetryCallState], Any]] = None,
    idempotent: bool = True,
    on_retry: Optional[Hook] = None,
    before: Optional[Hook] = None,
    after: Optional[Hook] = None,
    on_give_up: Optional[Hook] = None,
    engine: Optional[Engine] = None,
    raise_retry_error: bool = False,
    priority: Optional[PriorityName] = None,
) -> Union[F, Callable[[F], F]]:
    """Retry the decorated function when it fails, as the engine decides.

    Every option is checked when the decorator is applied (the engine's options
    contract, docs/options.md): a wrong one raises :class:`~smartretry.InvalidInputError`
    (a ``ValueError``) or :class:`~smartretry.InvalidTypeError` (a ``TypeError``) naming
    it, before the function ever runs.

    - ``job_type``: the name the engine learns under (default: the function's
      ``__qualname__``); ``tenant``: whose traffic this is (fairness, budgets).
    - ``retry_on``: exception types that count as failures (default ``Exception``);
      others propagate at once. Naming a programming error's type (``TypeError``…),
      which is otherwise raised after one attempt (docs/errors.md), retries it.
      ``give_up_on``: exception types never retried. ``retry_if``: a predicate on the
      exception, or on the return value (``True`` = treat as a failure and retry); it
      may be async on an async function.
    - ``max_attempts``: attempts in total, the first included, 1–100: authoritative over
      the policy's (6 by default) both ways, up to an operator's guardrail; retries a rate
      limit refused with a known reset, and failures while the downstream is down for
      everyone, do not use one up. ``deadline``: seconds from the first call after which
      no retry starts (default: the engine's 30 minutes). ``stop_if(state)``: true stops retrying. ``stop=`` takes the same
      in tenacity's form: ``stop_after_attempt(5) | stop_after_delay(30) | stop_when(f)``.
      Any of them stops. ``timeout``: seconds per attempt (async only: the attempt is
      cancelled and counts as a ``TimeoutError``).
    - ``wait``: the call's own schedule (``wait_exponential(base=0.5, max=10)``…): the
      engine computes the delays from it as its rules tier, within the guardrails.
    - ``idempotent=False``: never retry after a failure that may have taken effect.
    - ``fallback(state)``: the value to return when retries end, instead of raising.
    - Hooks, each called with the :class:`RetryCallState` (async hooks are awaited in
      async code): ``before`` each attempt, ``after`` each attempt, ``on_retry`` once a
      retry is decided (before sleeping), ``on_give_up`` when retries end (dead
      letter: ``state.history`` holds every attempt).
    - When retries end the last exception is re-raised with the attempt history in
      its ``__notes__`` (3.11+) and ``smartretry_history``; ``raise_retry_error=True``
      raises :class:`~smartretry.RetryError` instead.
    - ``engine``: default, the process-wide engine (:func:`~smartretry.default_engine`).
    - ``priority``: ``"low"``, ``"normal"``, ``"high"`` or ``"critical"``: when retry
      budgets or concurrency caps bind, higher priorities are served first.

    The wrapper has ``statistics`` (:class:`~smartretry.RetryStatistics`: calls,
    attempts, retries, time waited, the last decision) and ``retry_policy``.
    Generator functions are refused: values already yielded cannot be taken back.
    """
    options: Dict[str, Any] = {
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
        "fallback": fallback,
        "idempotent": idempotent,
        "on_retry": on_retry,
        "before": before,
        "after": after,
        "on_give_up": on_give_up,
        "engine": engine,
        "raise_retry_error": raise_retry_error,
        "priority": priority,
    }

    if fn is None:
        # @smart_retry(...) with a wrong option fails on the decorator line itself.
        precheck(options if job_type is None else {"job_type": job_type, **options})

    def decorate(func: F) -> F:
        if not callable(func):
            raise option_type_error("fn", f"@smart_retry decorates a function, got {type(func).__name__}")
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise option_type_error(
                "fn",
                f"{_name_of(func)} is a generator function: values it already yielded cannot be taken "
                "back, so it cannot be retried; retry the function that consumes it, or one that "
                "returns a list",
            )
        is_async = inspect.iscoroutinefunction(func)
        policy = RetryPolicy(
            {"job_type": job_type if job_type is not None else _name_of(func), **options},
            is_async=is_async,
            own_counter=True,
        )
        return cast(F, _wrap_async(func, policy) if is_async else _wrap_sync(func, policy))

    if fn is not None:
        if not callable(fn):
            # @smart_retry(3): a value where the function or keywords were due.
            raise option_type_error(
                "fn",
                f"smart_retry takes the function to decorate or keyword options, got {type(fn).__name__} "
                f"{fn!r} (options are keywords: smart_retry(max_attempts=...))",
            )
        return decorate(fn)
    return decorate


def _name_of(func: Callable[..., Any]) -> str:
    name = getattr(func, "__qualname__", None)
    return name if isinstance(name, str) else type(func).__qualname__


def _wrap_sync(func: Callable[..., Any], policy: RetryPolicy) -> Callable[..., Any]:
    if not policy.fast:
        call = partial(_loops.call, policy)

        @functools.wraps(func)
        def general(*args: Any, **kwargs: Any) -> Any:
            return call(func, args, kwargs)

        general.retry_policy = policy  # type: ignore[attr-defined]
        general.statistics = policy.statistics  # type: ignore[attr-defined]
        return general

    retry_on = policy.retry_on
    count = policy.counter.count
    flush = policy.counter.flush
    resume = partial(_loops.resume, policy)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = func(*args, **kwargs)
        except retry_on as exc:
            failure = exc  # resumed outside the except block: no implicit chaining
        else:
            if next(count) & 1023 == 1023:
                flush()
            return result
        return resume(func, args, kwargs, failure)

    wrapper.retry_policy = policy  # type: ignore[attr-defined]
    wrapper.statistics = policy.statistics  # type: ignore[attr-defined]
    return wrapper


def _wrap_async(func: Callable[..., Awaitable[Any]], policy: RetryPolicy) -> Callable[..., Awaitable[Any]]:
    if not policy.fast:
        call = partial(_loops.call_async, policy)

        @functools.wraps(func)
        async def general(*args: Any, **kwargs: Any) -> Any:
            return await call(func, args, kwargs)

        general.retry_policy = policy  # type: ignore[attr-defined]
        general.statistics = policy.statistics  # type: ignore[attr-defined]
        return general

    retry_on = policy.retry_on
    count = policy.counter.count
    flush = policy.counter.flush
    resume = partial(_loops.resume_async, policy)

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = await func(*args, **kwargs)
        except retry_on as exc:
            failure = exc
        else:
            if next(count) & 1023 == 1023:
                flush()
            return result
        return await resume(func, args, kwargs, failure)

    wrapper.retry_policy = policy  # type: ignore[attr-defined]
    wrapper.statistics = policy.statistics  # type: ignore[attr-defined]
    return wrapper
