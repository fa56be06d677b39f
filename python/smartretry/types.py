"""Typed shapes of the engine's inputs, for type checkers (plain dicts at run time).

``Engine.decide`` takes a :class:`FeaturesDict`, ``Engine.record`` an
:class:`AttemptDict`; both accept any mapping with these keys (extra keys are ignored,
as in the API document).
"""

from __future__ import annotations

from typing import Dict, Optional, TypedDict, Union

__all__ = ["FeaturesDict", "AttemptDict"]


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
    priority: Optional[int]
    worker_version: Optional[str]
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
