"""What one retried call has been through: its attempts and the engine's decisions."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

from ._native import Decision

__all__ = ["AttemptRecord", "RetryCallState"]


class AttemptRecord:
    """One attempt of a call, as kept in ``RetryCallState.history``."""

    __slots__ = (
        "attempt_number",
        "delay_ms",
        "started_ms",
        "duration_ms",
        "succeeded",
        "exception",
        "result",
        "error_class",
        "http_status",
        "decision",
    )

    def __init__(
        self,
        attempt_number: int,
        delay_ms: int,
        started_ms: int,
        duration_ms: int,
        succeeded: bool,
        exception: Optional[BaseException] = None,
        result: Any = None,
        error_class: Optional[str] = None,
        http_status: Optional[int] = None,
    ) -> None:
        #: 1-based.
        self.attempt_number = attempt_number
        #: How long the call waited before this attempt (ms; virtual in testing mode).
        self.delay_ms = delay_ms
        #: When the attempt started, in ms since the call started.
        self.started_ms = started_ms
        self.duration_ms = duration_ms
        self.succeeded = succeeded
        self.exception = exception
        self.result = result
        #: The error name the engine was told (the exception's class), if any.
        self.error_class = error_class
        self.http_status = http_status
        #: The engine's answer to this failure; ``None`` for a success or a local stop.
        self.decision: Optional[Decision] = None

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-friendly summary (exception as ``repr``; the decision as its dict)."""
        return {
            "attempt_number": self.attempt_number,
            "delay_ms": self.delay_ms,
            "started_ms": self.started_ms,
            "duration_ms": self.duration_ms,
            "succeeded": self.succeeded,
            "exception": repr(self.exception) if self.exception is not None else None,
            "error_class": self.error_class,
            "http_status": self.http_status,
            "decision": self.decision.to_dict() if self.decision is not None else None,
        }

    def describe(self) -> str:
        if self.succeeded:
            outcome = "succeeded"
        elif self.exception is not None:
            outcome = f"failed with {type(self.exception).__name__}: {self.exception}"
        else:
            outcome = f"returned a result to retry: {self.result!r}"
        if self.http_status is not None:
            outcome += f" (HTTP {self.http_status})"
        text = f"attempt {self.attempt_number} {outcome} after {self.duration_ms} ms"
        d = self.decision
        if d is not None:
            if d.should_retry:
                text += f"; {d.method}: retry in {d.delay_ms} ms ({d.rationale})"
            else:
                text += f"; {d.method}: no retry ({d.rationale})"
        return text

    def __repr__(self) -> str:
        return f"AttemptRecord({self.describe()})"


class RetryCallState:
    """One call under retry: passed to hooks, ``fallback`` and ``on_give_up``."""

    __slots__ = (
        "job_type",
        "tenant",
        "job_id",
        "args",
        "kwargs",
        "attempt_number",
        "history",
        "decision",
        "next_delay_ms",
        "give_up_reason",
        "exception",
        "result",
        "_t0",
        "_skipped_ms",
        "_first_failure_ms",
        "_last_failure_ms",
        "_attempt_started_ms",
        "_delay_ms",
        "_labels",
        "_failed_at_unix_ms",
    )

    def __init__(
        self,
        job_type: str,
        tenant: Optional[str],
        args: Tuple[Any, ...] = (),
        kwargs: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.job_type = job_type
        self.tenant = tenant
        #: Unique per call, given once the call first fails.
        self.job_id: Optional[str] = None
        #: The decorated function's arguments (empty for ``retrying``).
        self.args = args
        self.kwargs = kwargs if kwargs is not None else {}
        #: The attempt running now, or the last one once the call is over (1-based).
        self.attempt_number = 1
        self.history: List[AttemptRecord] = []
        #: The engine's last decision.
        self.decision: Optional[Decision] = None
        #: The delay before the next attempt, once a retry is decided.
        self.next_delay_ms: Optional[int] = None
        #: Why retries ended (the engine's rationale or a local limit).
        self.give_up_reason: Optional[str] = None
        #: What the last attempt raised or returned.
        self.exception: Optional[BaseException] = None
        self.result: Any = None
        self._t0 = time.monotonic()
        self._skipped_ms = 0
        self._first_failure_ms = 0
        self._last_failure_ms = 0
        self._attempt_started_ms = 0
        self._delay_ms = 0
        #: When the last attempt failed, on the engine's clock (Unix ms): what a check-in
        #: asks about (``Engine.released``).
        self._failed_at_unix_ms = 0
        #: (error_class, error_code, http_status) of the last failure: the learned key.
        self._labels: Tuple[Optional[str], Optional[str], Optional[int]] = (None, None, None)

    def elapsed_ms(self) -> int:
        """Milliseconds since the call started (plus skipped sleeps in testing mode)."""
        return int((time.monotonic() - self._t0) * 1000) + self._skipped_ms

    @property
    def elapsed(self) -> float:
        """Seconds since the call started."""
        return self.elapsed_ms() / 1000.0

    @property
    def outcome(self) -> Optional[AttemptRecord]:
        """The last finished attempt."""
        return self.history[-1] if self.history else None

    def __repr__(self) -> str:
        return (
            f"RetryCallState(job_type={self.job_type!r}, attempt_number={self.attempt_number}, "
            f"elapsed={self.elapsed:.3f})"
        )
