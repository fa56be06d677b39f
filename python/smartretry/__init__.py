"""smartretry: a retry library that learns when a failed call will succeed.

The decisions come from a Rust engine (``smartretry._native``); this package adds the
helpers Python code expects::

    from smartretry import smart_retry

    @smart_retry(job_type="payment_capture", max_attempts=5)
    def capture(payment_id: str) -> Receipt: ...

    @smart_retry                       # async functions and methods too
    async def fetch(url: str) -> bytes: ...

    for attempt in retrying(job_type="sync_inventory"):
        with attempt:
            sync_inventory()

The engine itself is there for direct use: ``Engine(seed=1).decide({...})``.
"""

from __future__ import annotations

from ._engine import default_engine, flush_successes, set_default_engine
from ._native import Decision, Engine, Preview, Stats, Subscription, __version__
from ._state import AttemptRecord, RetryCallState
from .control import (
    RetryStatistics,
    Stop,
    WaitDict,
    stop_after_attempt,
    stop_after_delay,
    stop_when,
    wait_exponential,
    wait_fibonacci,
    wait_fixed,
    wait_linear,
    wait_random_exponential,
)
from .decorators import smart_retry
from .errors import (
    ConfigError,
    Error,
    InvalidInputError,
    InvalidTypeError,
    ModelError,
    NotFoundError,
    RetryError,
    StoreError,
)
from .retrying import AttemptContext, Retrying, retrying
from .testing import is_testing, set_testing, testing
from .batch import BatchSummary, DeadLetter, process_batch, process_batch_async
from .dead_letters import dead_letter_on_give_up
from .types import (
    AttemptDict,
    EventDict,
    EventName,
    FeaturesDict,
    HealthDict,
    OverrideDict,
    PriorityName,
)

__all__ = [
    "__version__",
    "dead_letter_on_give_up",
    "Engine",
    "Decision",
    "Preview",
    "Stats",
    "Subscription",
    "FeaturesDict",
    "AttemptDict",
    "EventDict",
    "EventName",
    "OverrideDict",
    "HealthDict",
    "PriorityName",
    "process_batch",
    "process_batch_async",
    "BatchSummary",
    "DeadLetter",
    "smart_retry",
    "retrying",
    "stop_after_attempt",
    "stop_after_delay",
    "stop_when",
    "Stop",
    "wait_exponential",
    "wait_random_exponential",
    "wait_fixed",
    "wait_linear",
    "wait_fibonacci",
    "WaitDict",
    "RetryStatistics",
    "Retrying",
    "AttemptContext",
    "RetryCallState",
    "AttemptRecord",
    "default_engine",
    "set_default_engine",
    "flush_successes",
    "testing",
    "set_testing",
    "is_testing",
    "Error",
    "InvalidInputError",
    "InvalidTypeError",
    "ConfigError",
    "NotFoundError",
    "StoreError",
    "ModelError",
    "RetryError",
]
