"""Tenacity-grade control over a retried call, without giving up learning.

- **Schedules** (``wait=``): the call's own backoff, e.g. ``wait_exponential(base=0.5,
  max=10, jitter="full")``. The engine computes every delay from it (this package never
  does) and treats it as the rules tier for the call: guardrails still bound it, and a
  learned plan may still move a retry later, or earlier when confident.
- **Stops** (``stop=``) that combine with ``|``: ``stop_after_attempt(5) |
  stop_after_delay(30) | stop_when(lambda state: ...)``; any of them stops. They are the
  same as ``max_attempts=``, ``deadline=`` and ``stop_if=``, which combine too.
- **Statistics**: every decorated function has ``fn.statistics``, a
  :class:`RetryStatistics` of all its calls so far.

Every value is checked by the engine's options contract (docs/options.md) when it is
made, so a wrong one fails here, naming what was wrong.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple, TypedDict, Union

from ._native import Decision, validate_retry_options
from .errors import Error

if TYPE_CHECKING:
    from ._state import RetryCallState

__all__ = [
    "Stop",
    "stop_after_attempt",
    "stop_after_delay",
    "stop_when",
    "WaitDict",
    "wait_exponential",
    "wait_random_exponential",
    "wait_fixed",
    "wait_linear",
    "wait_fibonacci",
    "RetryStatistics",
]

StopPredicate = Callable[["RetryCallState"], Any]


def _checked(option: str, value: Any, named: str) -> Dict[str, Any]:
    """``value`` as the engine's contract checks it, errors naming ``named``."""
    try:
        checked: Dict[str, Any] = validate_retry_options({option: value})
    except Error as e:
        kind = "type" if isinstance(e, TypeError) else "input"
        field = named + (e.field or "")[len(option) :]
        raise type(e)(f"invalid {kind}: {field}: {e.reason}", field, e.reason) from None
    return checked


class Stop:
    """When to stop retrying: attempts, a deadline and predicates, any of which stops.
    Combine with ``|``. Build one with :func:`stop_after_attempt`,
    :func:`stop_after_delay` or :func:`stop_when`."""

    __slots__ = ("max_attempts", "deadline_ms", "predicates")

    def __init__(
        self,
        max_attempts: Optional[int] = None,
        deadline_ms: Optional[int] = None,
        predicates: Tuple[StopPredicate, ...] = (),
    ) -> None:
        #: Attempts in total, the first included.
        self.max_attempts = max_attempts
        #: Milliseconds from the first attempt's start after which no retry starts.
        self.deadline_ms = deadline_ms
        #: ``predicate(state)`` true = stop (may be async in async code).
        self.predicates = predicates

    def __or__(self, other: "Stop") -> "Stop":
        if not isinstance(other, Stop):
            return NotImplemented
        return Stop(
            _least(self.max_attempts, other.max_attempts),
            _least(self.deadline_ms, other.deadline_ms),
            self.predicates + other.predicates,
        )

    def __repr__(self) -> str:
        parts = []
        if self.max_attempts is not None:
            parts.append(f"stop_after_attempt({self.max_attempts})")
        if self.deadline_ms is not None:
            parts.append(f"stop_after_delay({self.deadline_ms / 1000:g})")
        parts.extend(f"stop_when({getattr(p, '__qualname__', p)!s})" for p in self.predicates)
        return " | ".join(parts) or "Stop()"


def _least(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def stop_after_attempt(attempts: int) -> Stop:
    """Stop after ``attempts`` attempts in total, the first included (1–100)."""
    _checked("max_attempts", attempts, "stop_after_attempt")
    return Stop(max_attempts=attempts)


def stop_after_delay(seconds: float) -> Stop:
    """Start no retry later than ``seconds`` after the first attempt started."""
    deadline_ms: int = _checked("deadline", seconds, "stop_after_delay")["deadline_ms"]
    return Stop(deadline_ms=deadline_ms)


def stop_when(predicate: StopPredicate) -> Stop:
    """Stop when ``predicate(state)`` is true (checked after each failure; may be async
    in async code)."""
    _checked("stop_if", predicate, "stop_when")
    return Stop(predicates=(predicate,))


class WaitDict(TypedDict, total=False):
    """A call's own schedule, as ``wait=`` takes it (seconds)."""

    strategy: str
    base: float
    max: float
    multiplier: float
    jitter: Union[str, float]


JitterName = Union[str, float]


def _wait(strategy: str, base: float, max: Optional[float], multiplier: Optional[float], jitter: JitterName) -> WaitDict:
    wait: WaitDict = {"strategy": strategy, "base": base, "jitter": jitter}
    if max is not None:
        wait["max"] = max
    if multiplier is not None:
        wait["multiplier"] = multiplier
    _checked("wait", wait, "wait")
    return wait


def wait_exponential(
    base: float = 1.0, max: Optional[float] = None, multiplier: float = 2.0, jitter: JitterName = "none"
) -> WaitDict:
    """``base × multiplier^(n-1)`` seconds before retry n, capped at ``max`` (default: the
    guardrails' max delay). ``jitter``: ``"none"``, ``"full"``, ``"equal"``,
    ``"decorrelated"`` or a percentage."""
    return _wait("exponential", base, max, multiplier, jitter)


def wait_random_exponential(base: float = 1.0, max: Optional[float] = None, multiplier: float = 2.0) -> WaitDict:
    """Exponential with full jitter (uniform in ``[0, delay]``): tenacity's
    ``wait_random_exponential``, AWS's recommendation for many clients."""
    return _wait("exponential", base, max, multiplier, "full")


def wait_fixed(seconds: float, jitter: JitterName = "none") -> WaitDict:
    """The same wait before every retry."""
    return _wait("constant", seconds, None, None, jitter)


def wait_linear(base: float = 1.0, max: Optional[float] = None, jitter: JitterName = "none") -> WaitDict:
    """``base × n`` seconds before retry n."""
    return _wait("linear", base, max, None, jitter)


def wait_fibonacci(base: float = 1.0, max: Optional[float] = None, jitter: JitterName = "none") -> WaitDict:
    """``base × fib(n)`` seconds (1, 2, 3, 5, 8…) before retry n."""
    return _wait("fibonacci", base, max, None, jitter)


class RetryStatistics:
    """What a decorated function's calls have been through so far (``fn.statistics``).

    ``calls`` started, ``attempts`` made (``retries`` = attempts - calls), calls that
    ended with a ``success`` or ``gave_up`` (raised or answered by ``fallback``), the time
    spent waiting between attempts (``idle_for``, seconds; virtual under ``testing()``)
    and the engine's ``last_decision``. First-attempt successes are counted without a
    lock on the success path; the rest is updated on the failure path.
    """

    __slots__ = ("_first_successes", "_lock", "failed_first", "retries", "retried_successes", "gave_up", "idle_ms", "last_decision")

    def __init__(self, first_successes: Callable[[], int]) -> None:
        self._first_successes = first_successes
        self._lock = threading.Lock()
        #: Calls whose first attempt failed.
        self.failed_first = 0
        self.retries = 0
        #: Calls that succeeded after at least one retry.
        self.retried_successes = 0
        self.gave_up = 0
        self.idle_ms = 0
        self.last_decision: Optional[Decision] = None

    @property
    def calls(self) -> int:
        return self._first_successes() + self.failed_first

    @property
    def attempts(self) -> int:
        return self.calls + self.retries

    @property
    def successes(self) -> int:
        return self._first_successes() + self.retried_successes

    @property
    def idle_for(self) -> float:
        """Seconds spent waiting between attempts, over every call."""
        return self.idle_ms / 1000.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "attempts": self.attempts,
            "retries": self.retries,
            "successes": self.successes,
            "gave_up": self.gave_up,
            "idle_for": self.idle_for,
            "last_decision": self.last_decision.to_dict() if self.last_decision is not None else None,
        }

    def __repr__(self) -> str:
        return (
            f"RetryStatistics(calls={self.calls}, attempts={self.attempts}, retries={self.retries}, "
            f"successes={self.successes}, gave_up={self.gave_up}, idle_for={self.idle_for:.3f})"
        )
