"""Batch item retries: process a batch in chunks, retry the failed items one by one
with the engine, never re-run an item that succeeded::

    summary = process_batch(users, generate_report, job_type="weekly_report", chunk_size=10)
    print(f"{summary.success_rate:.1%} succeeded; {summary.dead_lettered} dead-lettered")
    for dead in summary.dead_letters:
        park(dead.item, dead.error, dead.reason)

    summary = await process_batch_async(users, generate_report_async, job_type="weekly_report")

Each chunk's items run once; those that failed are then retried individually, each
with its own engine decisions (delays, limits, refusals, all from the engine). An item
the engine gives up on is dead-lettered with the reason. The sync form retries a
chunk's failed items one after another; the async form runs a chunk's items, and then
their retries, concurrently.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Generic,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
)

from . import testing as _testing
from ._native import Engine
from ._retry import ExceptionTypes, RetryPolicy
from ._state import RetryCallState
from .types import PriorityName

__all__ = ["process_batch", "process_batch_async", "BatchSummary", "DeadLetter"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class DeadLetter(Generic[T]):
    """An item the retries could not save."""

    index: int
    item: T
    error: BaseException
    attempts: int
    #: Why retrying stopped: the engine's rationale, or the local reason.
    reason: str


@dataclass(frozen=True)
class BatchSummary(Generic[T, R]):
    """What happened to a batch."""

    total: int
    succeeded: int
    #: Items whose first attempt failed and that were retried at least once.
    retried: int
    dead_lettered: int
    #: Results of the items that succeeded, by their index in the batch.
    results: Dict[int, R] = field(default_factory=dict)
    dead_letters: List[DeadLetter[T]] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        """Succeeded / total (1.0 for an empty batch)."""
        return 1.0 if self.total == 0 else self.succeeded / self.total


def _policy(
    job_type: str,
    tenant: Optional[str],
    retry_on: ExceptionTypes,
    max_attempts: Optional[int],
    priority: Optional[PriorityName],
    engine: Optional[Engine],
) -> RetryPolicy:
    return RetryPolicy(
        {
            "job_type": job_type,
            "tenant": tenant,
            "retry_on": retry_on,
            "max_attempts": max_attempts,
            "engine": engine,
            "priority": priority,
        },
        is_async=None,
    )


def _chunks(items: Sequence[T], size: int) -> Iterable[Tuple[int, Sequence[T]]]:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"chunk_size must be an int ≥ 1, got {size!r}")
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


class _Tally(Generic[T, R]):
    def __init__(self, total: int) -> None:
        self.total = total
        self.retried = 0
        self.results: Dict[int, R] = {}
        self.dead: List[DeadLetter[T]] = []

    def first_failure(self, policy: RetryPolicy, index: int, item: T, exc: Exception) -> bool:
        """Whether the failure may be retried; if not, dead-letter the item now."""
        if policy.retryable(exc):
            return True
        self.dead.append(DeadLetter(index, item, exc, 1, f"{type(exc).__name__} is not retried (retry_on)"))
        return False

    def finish(self, index: int, item: T, state: RetryCallState, ok: bool, value: Any) -> None:
        if state.attempt_number > 1:
            self.retried += 1
        if ok:
            self.results[index] = value
        else:
            reason = state.give_up_reason or "retries ended"
            self.dead.append(DeadLetter(index, item, value, state.attempt_number, reason))

    def summary(self) -> BatchSummary[T, R]:
        self.dead.sort(key=lambda d: d.index)
        return BatchSummary(
            total=self.total,
            succeeded=len(self.results),
            retried=self.retried,
            dead_lettered=len(self.dead),
            results=dict(sorted(self.results.items())),
            dead_letters=self.dead,
        )


def _retry_item(policy: RetryPolicy, fn: Callable[[T], R], item: T, first: Exception) -> Tuple[RetryCallState, bool, Any]:
    state = policy.start((item,), {})
    exc = first
    while True:
        delay = policy.failed(state, exc)
        if delay is None:
            return state, False, exc
        policy.sleep(state, delay)
        try:
            result = fn(item)
        except Exception as e:
            if not policy.retryable(e):
                policy.abandon(state, e)
                state.give_up_reason = f"{type(e).__name__} is not retried (retry_on)"
                return state, False, e
            exc = e
        else:
            policy.succeeded(state, result)
            return state, True, result


async def _retry_item_async(
    policy: RetryPolicy, fn: Callable[[T], Awaitable[R]], item: T, first: Exception
) -> Tuple[RetryCallState, bool, Any]:
    state = policy.start((item,), {})
    exc = first
    while True:
        delay = policy.failed(state, exc)
        if delay is None:
            return state, False, exc
        await policy.sleep_async(state, delay)
        try:
            result = await fn(item)
        except Exception as e:
            if not policy.retryable(e):
                policy.abandon(state, e)
                state.give_up_reason = f"{type(e).__name__} is not retried (retry_on)"
                return state, False, e
            exc = e
        else:
            policy.succeeded(state, result)
            return state, True, result


def process_batch(
    items: Iterable[T],
    fn: Callable[[T], R],
    *,
    job_type: str,
    chunk_size: int = 10,
    delay_between_chunks: float = 0.0,
    tenant: Optional[str] = None,
    retry_on: ExceptionTypes = Exception,
    max_attempts: Optional[int] = None,
    priority: Optional[PriorityName] = None,
    engine: Optional[Engine] = None,
) -> BatchSummary[T, R]:
    """Run ``fn(item)`` for every item, ``chunk_size`` at a time; retry the failed items
    individually with the engine; return what succeeded and what was dead-lettered."""
    batch = list(items)
    policy = _policy(job_type, tenant, retry_on, max_attempts, priority, engine)
    tally: _Tally[T, R] = _Tally(len(batch))
    for start, chunk in _chunks(batch, chunk_size):
        if start and delay_between_chunks > 0 and not _testing._enabled:
            time.sleep(delay_between_chunks)
        failed: List[Tuple[int, T, Exception]] = []
        for offset, item in enumerate(chunk):
            try:
                result = fn(item)
            except Exception as exc:
                if tally.first_failure(policy, start + offset, item, exc):
                    failed.append((start + offset, item, exc))
            else:
                next(policy.counter.count)
                tally.results[start + offset] = result
        for index, item, first_error in failed:
            state, ok, value = _retry_item(policy, fn, item, first_error)
            tally.finish(index, item, state, ok, value)
    return tally.summary()


async def process_batch_async(
    items: Iterable[T],
    fn: Callable[[T], Awaitable[R]],
    *,
    job_type: str,
    chunk_size: int = 10,
    delay_between_chunks: float = 0.0,
    tenant: Optional[str] = None,
    retry_on: ExceptionTypes = Exception,
    max_attempts: Optional[int] = None,
    priority: Optional[PriorityName] = None,
    engine: Optional[Engine] = None,
) -> BatchSummary[T, R]:
    """The asyncio form of :func:`process_batch`: a chunk's items run concurrently, then
    its failed items are retried concurrently (each on its own engine schedule)."""
    batch = list(items)
    policy = _policy(job_type, tenant, retry_on, max_attempts, priority, engine)
    tally: _Tally[T, R] = _Tally(len(batch))

    async def first(index: int, item: T) -> Optional[Tuple[int, T, Exception]]:
        try:
            result = await fn(item)
        except Exception as error:
            return (index, item, error) if tally.first_failure(policy, index, item, error) else None
        next(policy.counter.count)
        tally.results[index] = result
        return None

    async def again(index: int, item: T, exc: Exception) -> None:
        state, ok, value = await _retry_item_async(policy, fn, item, exc)
        tally.finish(index, item, state, ok, value)

    for start, chunk in _chunks(batch, chunk_size):
        if start and delay_between_chunks > 0:
            await asyncio.sleep(0 if _testing._enabled else delay_between_chunks)
        outcomes = await asyncio.gather(*(first(start + i, item) for i, item in enumerate(chunk)))
        await asyncio.gather(*(again(*failure) for failure in outcomes if failure is not None))
    return tally.summary()
