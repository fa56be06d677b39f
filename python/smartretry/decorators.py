"""``@smart_retry``: retries decided by the engine, on sync and async functions and methods."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Awaitable, Callable, Optional, TypeVar, Union, cast, overload

from ._native import Engine
from ._retry import ExceptionTypes, Hook, RetryPolicy
from ._state import RetryCallState
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
    retry_if: Optional[Callable[[Any], bool]] = None,
    max_attempts: Optional[int] = None,
    deadline: Optional[float] = None,
    timeout: Optional[float] = None,
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
    retry_if: Optional[Callable[[Any], bool]] = None,
    max_attempts: Optional[int] = None,
    deadline: Optional[float] = None,
    timeout: Optional[float] = None,
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

    - ``job_type``: the name the engine learns under (default: the function's
      ``__qualname__``); ``tenant``: whose traffic this is (fairness, budgets).
    - ``retry_on``: exception types that count as failures (default ``Exception``);
      others propagate at once. ``retry_if``: a predicate on the exception, or on the
      return value (``True`` = treat as a failure and retry).
    - ``max_attempts``: attempts in total, the first included (the engine's policies
      and guardrails may stop sooner). ``deadline``: seconds from the first call
      after which no retry starts. ``timeout``: seconds per attempt (async only: the
      attempt is cancelled and counts as a ``TimeoutError``).
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
    """

    def decorate(func: F) -> F:
        policy = RetryPolicy(
            job_type=job_type if job_type is not None else _name_of(func),
            tenant=tenant,
            retry_on=retry_on,
            retry_if=retry_if,
            max_attempts=max_attempts,
            deadline=deadline,
            timeout=timeout,
            fallback=fallback,
            idempotent=idempotent,
            on_retry=on_retry,
            before=before,
            after=after,
            on_give_up=on_give_up,
            engine=engine,
            raise_retry_error=raise_retry_error,
            priority=priority,
        )
        if inspect.iscoroutinefunction(func):
            return cast(F, _wrap_async(func, policy))
        if timeout is not None:
            raise TypeError("timeout= needs an async function: a sync call cannot be cancelled")
        return cast(F, _wrap_sync(func, policy))

    if fn is not None:
        return decorate(fn)
    return decorate


def _name_of(func: Callable[..., Any]) -> str:
    name = getattr(func, "__qualname__", None)
    return name if isinstance(name, str) else type(func).__qualname__


def _wrap_sync(func: Callable[..., Any], policy: RetryPolicy) -> Callable[..., Any]:
    if not policy.fast:
        call = policy.call

        @functools.wraps(func)
        def general(*args: Any, **kwargs: Any) -> Any:
            return call(func, args, kwargs)

        general.retry_policy = policy  # type: ignore[attr-defined]
        return general

    retry_on = policy.retry_on
    count = policy.counter.count
    flush = policy.counter.flush
    resume = policy.resume

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
    return wrapper


def _wrap_async(func: Callable[..., Awaitable[Any]], policy: RetryPolicy) -> Callable[..., Awaitable[Any]]:
    if not policy.fast:
        call = policy.call_async

        @functools.wraps(func)
        async def general(*args: Any, **kwargs: Any) -> Any:
            return await call(func, args, kwargs)

        general.retry_policy = policy  # type: ignore[attr-defined]
        return general

    retry_on = policy.retry_on
    count = policy.counter.count
    flush = policy.counter.flush
    resume = policy.resume_async

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
    return wrapper
