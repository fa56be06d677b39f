"""The process-wide default engine and the cheap success counters.

A first attempt that succeeds costs one ``next()`` on an ``itertools.count``: the
engine needs successes for its retry budget, adaptive throttling and breakers, but not
one FFI call each. Counts are flushed with ``Engine.record_successes`` every
``FLUSH_EVERY`` successes, whenever a failure of the same function is handled (so the
budget and the throttle are current when a decision is made), every second from any
failure path for the other functions, and at exit.
"""

from __future__ import annotations

import atexit
import itertools
import threading
import time
import weakref
from typing import Dict, Optional, Tuple

from ._native import Engine

__all__ = ["default_engine", "set_default_engine", "flush_successes"]

#: Successes counted between two flushes of one function's counter (a power of two).
FLUSH_EVERY = 1024
FLUSH_MASK = FLUSH_EVERY - 1

_default: Optional[Engine] = None
_default_lock = threading.Lock()


def default_engine() -> Engine:
    """The process-wide engine: defaults plus ``RETRY_*`` environment variables."""
    global _default
    engine = _default
    if engine is None:
        with _default_lock:
            if _default is None:
                _default = Engine(env=True)
            engine = _default
    return engine


def set_default_engine(engine: Optional[Engine]) -> None:
    """Replace the process-wide engine (``None``: make a new one on next use).

    Successes counted so far are flushed to the engine they were counted for.
    """
    global _default
    flush_successes()
    with _default_lock:
        _default = engine


class SuccessCounter:
    """First-attempt successes of one (job_type, tenant), counted without the engine."""

    __slots__ = ("count", "job_type", "tenant", "engine", "_reported", "_skipped", "_lock", "__weakref__")

    def __init__(self, job_type: str, tenant: Optional[str], engine: Optional[Engine]) -> None:
        #: ``next(counter.count)`` is the whole cost of counting a success (atomic under the GIL).
        self.count = itertools.count()
        self.job_type = job_type
        self.tenant = tenant
        #: ``None``: the default engine at flush time.
        self.engine = engine
        #: Successes reported so far.
        self._reported = 0
        #: Values of ``count`` consumed by reads, not by successes.
        self._skipped = 0
        self._lock = threading.Lock()
        _counters.add(self)

    def total(self) -> int:
        """Successes counted so far, reported or not (the value this consumes is not one)."""
        with self._lock:
            total = next(self.count) - self._skipped
            self._skipped += 1
            return total

    def take(self) -> int:
        """Successes counted since the last take."""
        with self._lock:
            total = next(self.count) - self._skipped
            self._skipped += 1
            n = total - self._reported
            self._reported = total
            return n

    def flush(self, now_ms: Optional[int] = None) -> None:
        n = self.take()
        if n:
            self.report(n, now_ms)

    def report(self, n: int, now_ms: Optional[int] = None) -> None:
        engine = self.engine if self.engine is not None else default_engine()
        engine.record_successes(self.job_type, self.tenant, n, now_ms)


_counters: "weakref.WeakSet[SuccessCounter]" = weakref.WeakSet()
_shared: Dict[Tuple[str, Optional[str], Optional[Engine]], SuccessCounter] = {}
_shared_lock = threading.Lock()


def counter_for(job_type: str, tenant: Optional[str], engine: Optional[Engine]) -> SuccessCounter:
    """The one counter of (job_type, tenant, engine), shared by every helper using it."""
    key = (job_type, tenant, engine)
    counter = _shared.get(key)
    if counter is None:
        with _shared_lock:
            counter = _shared.get(key)
            if counter is None:
                counter = _shared[key] = SuccessCounter(job_type, tenant, engine)
    return counter
_last_global_flush = 0.0


def flush_successes() -> None:
    """Report every counted success to its engine now."""
    global _last_global_flush
    _last_global_flush = time.monotonic()
    for counter in list(_counters):
        counter.flush()


def maybe_flush_all() -> None:
    """From a failure path: flush every counter at most once a second."""
    if time.monotonic() - _last_global_flush >= 1.0:
        flush_successes()


def _flush_at_exit() -> None:
    try:
        flush_successes()
    except Exception:  # an engine that cannot take them any more: nothing to save
        pass


atexit.register(_flush_at_exit)
