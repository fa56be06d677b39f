"""Side-by-side overhead of @smart_retry, tenacity, stamina and backoff, in one process.

Two numbers per library, each over a bare call of the same function:

- success path: a call that succeeds at once (what every call pays);
- per failure: a call that fails once and then succeeds, minus a hand-written
  ``try/except`` doing the same two calls (the retry machinery per failure: for
  smartretry an engine decision and a recorded outcome).

Sleeping is switched off the way each library allows (smartretry and stamina: testing
mode; tenacity: ``wait_none`` and a no-op ``sleep``; backoff: a zero constant interval,
which still calls ``time.sleep(0)``), and so is logging (stamina's retry hooks), so
only the machinery is timed. For smartretry, the engine's shared guardrails that would act on a
workload failing half of its calls (retry budget, adaptive throttling, circuit breaker)
are relaxed: every failure takes the full decide + record path.

    scripts/bench-python.sh            # installs tenacity, stamina and backoff first
    python python/benchmarks/bench.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import smartretry
from smartretry import Engine, smart_retry


def per_call_us(fn: Callable[[], Any], n: int, repeat: int) -> float:
    """Best of `repeat` runs of `n` calls, in µs per call (the least disturbed run)."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            best = min(best, (time.perf_counter() - t) / n * 1e6)
    finally:
        gc.enable()
    return best


def loop_us(fn: Callable[[int], Any], n: int, repeat: int) -> float:
    """Like per_call_us, but `fn(n)` runs the loop itself (lower loop overhead)."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            t = time.perf_counter()
            fn(n)
            best = min(best, (time.perf_counter() - t) / n * 1e6)
    finally:
        gc.enable()
    return best


def make_engine() -> Engine:
    engine = Engine(seed=1, config={"strategy": {"circuit_breaker": {"enabled": False}}})
    engine.update_guardrails({"max_budget_percent": 100, "adaptive_throttle": False})
    return engine


# -- the functions under test -----------------------------------------------------------


def ok(x: int) -> int:
    return x


class FailEveryOther:
    """Fails on odd calls: each outer call = one failure + one success."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, x: int) -> int:
        self.n += 1
        if self.n & 1:
            raise ConnectionResetError("reset")
        return x


def _no_sleep(seconds: float) -> None:
    pass


def libraries(engine: Engine) -> Dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """Decorator factories, one per installed library, with sleeping off."""
    libs: Dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
        "smartretry": lambda f: smart_retry(engine=engine, job_type="bench", max_attempts=3)(f),
    }
    try:
        import tenacity

        libs["tenacity"] = lambda f: tenacity.retry(
            stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none(), sleep=_no_sleep, reraise=True
        )(f)
    except ImportError:
        pass
    try:
        import stamina

        import stamina.instrumentation

        stamina.set_testing(True, attempts=3)
        stamina.instrumentation.set_on_retry_hooks([])
        libs["stamina"] = lambda f: stamina.retry(on=Exception, attempts=3)(f)
    except ImportError:
        pass
    try:
        import backoff

        libs["backoff"] = lambda f: backoff.on_exception(
            backoff.constant, Exception, max_tries=3, interval=0, jitter=None, logger=None
        )(f)
    except ImportError:
        pass
    return libs


def bench_sync(engine: Engine, n: int, fail_n: int, repeat: int) -> Dict[str, Tuple[float, Optional[float]]]:
    libs = libraries(engine)
    bare_ok = loop_us(lambda k: [ok(1) for _ in range(k)], n, repeat)
    flaky = FailEveryOther()

    def manual() -> int:
        try:
            return flaky(1)
        except ConnectionResetError:
            return flaky(1)

    bare_fail = per_call_us(manual, fail_n, repeat)
    out: Dict[str, Tuple[float, Optional[float]]] = {}
    for name, deco in libs.items():
        wrapped_ok = deco(ok)
        success = loop_us(lambda k: [wrapped_ok(1) for _ in range(k)], n, repeat) - bare_ok
        wrapped_flaky = deco(FailEveryOther())
        failure: Optional[float] = per_call_us(lambda: wrapped_flaky(1), fail_n, repeat) - bare_fail
        out[name] = (success, failure)
    return out


def bench_async(engine: Engine, n: int, repeat: int) -> Dict[str, float]:
    """Success-path overhead of async functions (awaited in a loop, in one event loop)."""

    async def aok(x: int) -> int:
        return x

    decos: Dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
        "smartretry": lambda f: smart_retry(engine=engine, job_type="bench_async")(f)
    }
    try:
        import tenacity

        decos["tenacity"] = lambda f: tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none())(f)
    except ImportError:
        pass
    try:
        import stamina

        decos["stamina"] = lambda f: stamina.retry(on=Exception, attempts=3)(f)
    except ImportError:
        pass
    try:
        import backoff

        decos["backoff"] = lambda f: backoff.on_exception(
            backoff.constant, Exception, max_tries=3, interval=0, jitter=None, logger=None
        )(f)
    except ImportError:
        pass

    async def run(fn: Callable[[int], Any], k: int) -> None:
        for _ in range(k):
            await fn(1)

    def timed(fn: Callable[[int], Any]) -> float:
        loop = asyncio.new_event_loop()
        try:
            return loop_us(lambda k: loop.run_until_complete(run(fn, k)), n, repeat)
        finally:
            loop.close()

    bare = timed(aok)
    return {name: timed(deco(aok)) - bare for name, deco in decos.items()}


def bench_engine(engine: Engine, n: int, repeat: int) -> Dict[str, float]:
    """The engine calls of one failure, from Python, without the helpers."""
    features = {
        "job_type": "bench_engine",
        "attempt_number": 1,
        "error_class": "ConnectionResetError",
        "job_id": "bench_engine#1",
        "since_first_failure_ms": 0,
    }
    attempt = {
        "job_id": "bench_engine#1",
        "job_type": "bench_engine",
        "attempt_number": 2,
        "error_class": "ConnectionResetError",
        "delay_ms": 1000,
        "since_first_failure_ms": 1000,
        "success": True,
    }
    decide = engine.decide
    record = engine.record
    return {
        "decide": per_call_us(lambda: decide(features), n, repeat),
        "record": per_call_us(lambda: record(attempt), n, repeat),
        "decide+record": per_call_us(lambda: (decide(features), record(attempt)), n, repeat),
        "record_successes": per_call_us(lambda: engine.record_successes("bench_engine", None, 1024), n, repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = parser.parse_args()
    n, fail_n, repeat = (10_000, 1_000, 3) if args.quick else (50_000, 5_000, 5)

    smartretry.set_testing(True)
    engine = make_engine()
    versions = {"python": platform.python_version(), "smartretry": smartretry.__version__}
    for lib in ("tenacity", "stamina", "backoff"):
        try:
            versions[lib] = __import__(lib).__version__ if hasattr(__import__(lib), "__version__") else "installed"
        except ImportError:
            versions[lib] = "not installed"
    from importlib import metadata

    for lib in ("tenacity", "stamina", "backoff"):
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    print("versions:", ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"best of {repeat} runs; µs per call over a bare call\n")

    sync = bench_sync(engine, n, fail_n, repeat)
    asyn = bench_async(engine, n // 4, repeat)
    ours_success, ours_failure = sync["smartretry"]
    ours_async = asyn["smartretry"]
    print(f"{'':<12}{'success path':>26}{'success path (async)':>26}{'per failure':>26}")
    print(f"{'library':<12}" + f"{'µs':>12}{'vs smartretry':>14}" * 3)
    for name, (success, failure) in sync.items():
        a = asyn.get(name, float("nan"))
        f = failure if failure is not None else float("nan")
        print(
            f"{name:<12}{success:>12.2f}{success / ours_success:>13.1f}×"
            f"{a:>12.2f}{a / ours_async:>13.1f}×{f:>12.2f}{f / ours_failure:>13.1f}×"
        )
    eng = bench_engine(engine, fail_n * 4, repeat)
    print("\nengine calls from Python (binding + core), µs per call:")
    for k, v in eng.items():
        print(f"  {k:<18}{v:6.2f}")
    missing = [lib for lib in ("tenacity", "stamina", "backoff") if lib not in sync]
    if missing:
        print(f"\n(not installed: {', '.join(missing)}; scripts/bench-python.sh installs them)")
    if sys.flags.optimize:
        print("(python -O)")


if __name__ == "__main__":
    main()
