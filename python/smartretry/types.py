"""Typed shapes of the engine's inputs, for type checkers (plain dicts at run time).

``Engine.decide`` takes a :class:`FeaturesDict`, ``Engine.record`` an
:class:`AttemptDict`; both accept any mapping with these keys (extra keys are ignored,
as in the API document).
"""

from __future__ import annotations

from typing import Dict, List, Literal, Optional, TypedDict, Union

__all__ = [
    "FeaturesDict",
    "AttemptDict",
    "PriorityName",
    "EventName",
    "EventDict",
    "OverrideDict",
    "HealthDict",
]

#: How much a job matters when retry budgets and concurrency caps bind.
PriorityName = Literal["low", "normal", "high", "critical"]

#: The lifecycle events (``Engine.on``, ``Engine.subscribe``).
EventName = Literal[
    "retry_scheduled",
    "retry_succeeded",
    "retry_failed",
    "gave_up",
    "guardrail_triggered",
    "breaker_state_changed",
]


class _FeaturesRequired(TypedDict):
    job_type: str
    attempt_number: int


class FeaturesDict(_FeaturesRequired, total=False):
    """What failed: the inputs of a retry decision."""

    error_class: Optional[str]
    error_code: Union[str, int, None]
    http_status: Optional[int]
    queue: Optional[str]
    tenant: Optional[str]
    payload_size: Optional[int]
    time_of_day: Optional[int]
    job_id: Optional[str]
    since_first_failure_ms: Optional[int]
    since_last_failure_ms: Optional[int]
    since_last_failure: Optional[str]
    retry_after_ms: Optional[int]
    retry_after: Optional[str]
    idempotent: Optional[bool]
    #: A name, or the index 0–3 (low–critical).
    priority: Union[PriorityName, int, None]
    worker_version: Optional[str]
    #: Downstream health signals: latency_ms, error_rate, cpu, queue_depth.
    health: Dict[str, float]
    recent_failures: Optional[int]
    avg_processing_time: Optional[str]
    deadline_ms: Optional[int]


class _AttemptRequired(TypedDict):
    job_id: str
    job_type: str
    attempt_number: int
    success: bool


class AttemptDict(_AttemptRequired, total=False):
    """What happened on one attempt: the engine learns from these."""

    delay_ms: int
    error_class: Optional[str]
    error_code: Union[str, int, None]
    http_status: Optional[int]
    status: Optional[str]
    queue: Optional[str]
    tenant: Optional[str]
    since_first_failure_ms: Optional[int]
    payload_size: Optional[int]
    time_of_day: Optional[int]
    worker_version: Optional[str]
    health: Dict[str, float]
    timestamp: Optional[str]
    now_ms: Optional[int]
    processing_time: Optional[str]


class _EventRequired(TypedDict):
    type: EventName
    at_ms: int
    job_type: str


class EventDict(_EventRequired, total=False):
    """A lifecycle event, as ``Engine.on`` callbacks and ``Subscription`` receive it."""

    job_id: str
    tenant: str
    queue: str
    attempt_number: int
    error_class: str
    delay_ms: int
    method: str
    guardrails: List[str]
    rationale: str
    breaker_from: Literal["closed", "open", "half_open"]
    breaker_to: Literal["closed", "open", "half_open"]


class _OverrideRequired(TypedDict):
    name: str


class OverrideDict(_OverrideRequired, total=False):
    """An operator override: a scope (none = global) and what it sets there."""

    queue: str
    tenant: str
    job_type: str
    job_id: str
    max_attempts: int
    min_delay_ms: int
    max_delay_ms: int
    deadline_ms: int
    policy: str
    delay_ms: int
    retries_disabled: bool
    expires_at_ms: int
    reason: str


class HealthSignals(TypedDict, total=False):
    latency_ms: float
    error_rate: float
    cpu: float
    queue_depth: float


class _HealthRequired(TypedDict):
    job_type: str
    delay_factor: float
    requests: int
    signals: HealthSignals


class HealthDict(_HealthRequired, total=False):
    """``Engine.health(job_type)``: a downstream's 0–100 score and what went into it."""

    score: float
    success_rate: float
    breaker_state: Literal["closed", "open", "half_open"]
    signals_at_ms: int
