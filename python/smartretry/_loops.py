"""The whole retry loops over one :class:`RetryPolicy`, sync and async: the general ones
(hooks, predicates, per-attempt timeout) and the fast path's continuation after a failed
first attempt. Every step (record, decide, sleep, give up) is the policy's."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from ._retry import RetryPolicy, _maybe_await

__all__ = ["call", "resume", "call_async", "resume_async"]


def call(policy: RetryPolicy, fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    """The general sync loop (hooks, result predicates)."""
    state = policy.start(args, kwargs)
    while True:
        if policy.before is not None:
            policy.before(state)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            if not policy.retryable(exc):
                policy.abandon(state, exc)
                raise
            delay = policy.failed(state, exc)
        else:
            if policy.retry_if is None or not policy.retry_if(result):
                policy.succeeded(state, result)
                if policy.after is not None:
                    policy.after(state)
                return result
            delay = policy.failed(state, None, result)
        if policy.after is not None:
            policy.after(state)
        if delay is None:
            return policy.give_up(state)
        policy.sleep(state, delay)

def resume(
    policy: RetryPolicy, fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any], first: BaseException
) -> Any:
    """The fast path's continuation after a failed first attempt (``fast`` policies only)."""
    if not isinstance(first, Exception):  # KeyboardInterrupt, SystemExit… are never retried
        raise first
    state = policy.start(args, kwargs)
    exc = first
    while True:
        delay = policy.failed(state, exc)
        if delay is None:
            return policy.give_up(state)
        policy.sleep(state, delay)
        try:
            result = fn(*args, **kwargs)
        except Exception as e:
            if not policy.retryable(e):
                policy.abandon(state, e)
                raise
            exc = e
        else:
            policy.succeeded(state, result)
            return result

async def call_async(
    policy: RetryPolicy, fn: Callable[..., Awaitable[Any]], args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Any:
    """The general async loop (hooks, predicates, per-attempt timeout); async hooks
    and predicates are awaited."""
    state = policy.start(args, kwargs)
    while True:
        if policy.before is not None:
            await _maybe_await(policy.before(state))
        failure: Optional[BaseException] = None
        try:
            if policy.timeout is None:
                result = await fn(*args, **kwargs)
            else:
                result = await asyncio.wait_for(fn(*args, **kwargs), policy.timeout)
        except Exception as exc:
            if not await policy.retryable_async(exc):
                policy.abandon(state, exc)
                raise
            failure, result = exc, None
        else:
            if policy.retry_if is None or not await _maybe_await(policy.retry_if(result)):
                policy.succeeded(state, result)
                if policy.after is not None:
                    await _maybe_await(policy.after(state))
                return result
        stop = await policy.stop_requested_async(state, failure, result)
        delay = policy.failed(state, failure, result, stop)
        if policy.after is not None:
            await _maybe_await(policy.after(state))
        if delay is None:
            return await policy.give_up_async(state)
        await policy.sleep_async(state, delay)

async def resume_async(
    policy: RetryPolicy,
    fn: Callable[..., Awaitable[Any]],
    args: Tuple[Any, ...],
    kwargs: Dict[str, Any],
    first: BaseException,
) -> Any:
    if not isinstance(first, Exception):  # CancelledError, KeyboardInterrupt… are never retried
        raise first
    state = policy.start(args, kwargs)
    exc = first
    while True:
        delay = policy.failed(state, exc)
        if delay is None:
            return await policy.give_up_async(state)
        await policy.sleep_async(state, delay)
        try:
            result = await fn(*args, **kwargs)
        except Exception as e:
            if not policy.retryable(e):
                policy.abandon(state, e)
                raise
            exc = e
        else:
            policy.succeeded(state, result)
            return result
