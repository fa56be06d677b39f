"""10,000 retry contexts in flight at once in one event loop all complete correctly."""

from __future__ import annotations

import asyncio
import collections
from typing import Counter

from smartretry import Engine, retrying, smart_retry

N = 10_000


async def test_ten_thousand_concurrent_async_retry_contexts(fast: None) -> None:
    engine = Engine(seed=1)
    # Room for N retries in the window: this test is about the helpers, not the budget.
    engine.update_guardrails({"min_retries_per_sec": 1000, "adaptive_throttle": False})
    attempts: Counter[int] = collections.Counter()
    arrived = 0
    everyone_failed_once = asyncio.Event()

    async def work(i: int) -> int:
        nonlocal arrived
        attempts[i] += 1
        if attempts[i] == 1:
            arrived += 1
            if arrived == N:
                everyone_failed_once.set()
            await everyone_failed_once.wait()  # all N first attempts are in flight together
            raise ConnectionResetError(f"job {i}")
        await asyncio.sleep(0)
        return i * 2

    @smart_retry(engine=engine, job_type="fanout_decorated")
    async def decorated(i: int) -> int:
        return await work(i)

    async def block(i: int) -> int:
        async for attempt in retrying(engine=engine, job_type="fanout_block"):
            with attempt:
                return await work(i)
        raise AssertionError("unreachable")

    results = await asyncio.gather(*(decorated(i) if i % 2 else block(i) for i in range(N)))

    assert results == [i * 2 for i in range(N)]
    assert set(attempts.values()) == {2}
    for job_type in ("fanout_decorated", "fanout_block"):
        stats = engine.stats(job_type, "ConnectionResetError")
        assert stats.total_attempts == N // 2
        assert stats.successful_retries == N // 2
    assert engine.metrics()["retries_total"] == N
