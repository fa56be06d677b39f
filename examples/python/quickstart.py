"""The quick tour: the engine's API, then the decorator and the context manager.

    python examples/python/quickstart.py
"""

from __future__ import annotations

import asyncio

import smartretry
from smartretry import Engine, FeaturesDict, retrying, smart_retry

T0 = 1_700_000_000_000  # every engine call takes an optional now_ms (default: the wall clock)


def engine_tour() -> None:
    engine = Engine(seed=1)
    failure: FeaturesDict = {
        "job_type": "payment_capture",
        "error_class": "service_unavailable",
        "http_status": 503,
        "tenant": "acme",
        "attempt_number": 1,
        "since_first_failure_ms": 0,
        "retry_after_ms": None,
    }
    d = engine.decide(failure, now_ms=T0)
    print(f"retry={d.should_retry} in {d.delay_ms} ms [{d.method}, confidence {d.confidence}]: {d.rationale}")
    engine.record(
        {
            "job_id": "j1",
            "job_type": "payment_capture",
            "error_class": "service_unavailable",
            "attempt_number": 2,
            "tenant": "acme",
            "delay_ms": d.delay_ms,
            "since_first_failure_ms": d.delay_ms,
            "success": True,
        },
        now_ms=T0 + d.delay_ms,
    )
    stats = engine.stats("payment_capture", "service_unavailable", now_ms=T0 + 60_000)
    print(f"stats: {stats.total_attempts} retry recorded, success rate {stats.success_rate}")
    preview = engine.preview(failure, max_attempts=5, now_ms=T0)
    print("schedule if every retry failed:", [entry["delay_ms"] for entry in preview.timeline])
    try:
        engine.decide({"job_type": "payment_capture", "attempt_number": 0})
    except smartretry.InvalidInputError as e:
        print(f"bad input names the field: {e.field}: {e.reason}")


calls = {"sync": 0, "async": 0, "block": 0}


@smart_retry(job_type="inventory_sync", max_attempts=4)
def sync_inventory() -> str:
    calls["sync"] += 1
    if calls["sync"] < 3:
        raise ConnectionResetError("peer reset")
    return "synced"


@smart_retry(job_type="price_fetch", timeout=1.0)
async def fetch_price() -> float:
    calls["async"] += 1
    if calls["async"] < 2:
        raise TimeoutError("slow upstream")
    return 9.99


def charge() -> None:
    for attempt in retrying(job_type="charge", idempotent=False):
        with attempt:
            calls["block"] += 1
            if calls["block"] < 2:
                raise ConnectionRefusedError("not listening yet")  # never reached: safe to retry


def main() -> None:
    engine_tour()
    with smartretry.testing():  # no real sleeping: decisions and records as usual
        print(sync_inventory(), "after", calls["sync"], "attempts")
        print(asyncio.run(fetch_price()), "after", calls["async"], "attempts")
        charge()
        print("charged after", calls["block"], "attempts")


if __name__ == "__main__":
    main()
