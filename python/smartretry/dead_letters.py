"""Dead-letter a job automatically when its retries are given up.

    from smartretry import smart_retry, dead_letter_on_give_up

    @smart_retry(job_type="invoice_send", on_give_up=dead_letter_on_give_up(
        payload=lambda state: {"invoice_id": state.args[0]},
    ))
    def send_invoice(invoice_id: str) -> None: ...

When ``send_invoice`` gives up, the job goes to the engine's dead-letter queue (kept in its
store: SQLite or Redis make it durable and shared) with its failure reason, every attempt,
and the payload or payload reference given, for a person to review, retry or resolve.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Dict, Optional

from ._engine import default_engine
from ._native import Engine
from ._state import RetryCallState

__all__ = ["dead_letter_on_give_up"]


def dead_letter_on_give_up(
    *,
    engine: Optional[Engine] = None,
    payload: Optional[Callable[[RetryCallState], Any]] = None,
    payload_ref: Optional[Callable[[RetryCallState], str]] = None,
) -> Callable[[RetryCallState], Dict[str, Any]]:
    """An ``on_give_up`` hook that puts the job in the dead-letter queue of ``engine``
    (default: the default engine; pass the engine the helper uses if it has its own).

    ``payload`` (JSON-able, up to 1 MiB) and ``payload_ref`` (where the payload lives)
    are computed from the call's state. The hook returns the dead letter (with its id);
    an invalid payload raises :class:`smartretry.InvalidInputError` naming it.
    """

    def hook(state: RetryCallState) -> Dict[str, Any]:
        job_id = state.job_id or f"{state.job_type}-{uuid.uuid4().hex[:16]}"
        last = state.history[-1] if state.history else None
        reason = state.give_up_reason or (repr(state.exception) if state.exception else "given up")
        entry: Dict[str, Any] = {
            "job_id": job_id,
            "job_type": state.job_type,
            "failure_reason": reason,
            "attempts": [
                {
                    "job_id": job_id,
                    "job_type": state.job_type,
                    "attempt_number": a.attempt_number,
                    "success": a.succeeded,
                    "delay_ms": a.delay_ms,
                    **({"error_class": a.error_class} if a.error_class else {}),
                    **({"http_status": a.http_status} if a.http_status is not None else {}),
                }
                for a in state.history[-1000:]
            ],
        }
        if last is not None and last.error_class:
            entry["error_class"] = last.error_class
        if state.tenant is not None:
            entry["tenant"] = state.tenant
        if payload is not None:
            entry["payload"] = payload(state)
        if payload_ref is not None:
            entry["payload_ref"] = payload_ref(state)
        return (engine if engine is not None else default_engine()).add_dead_letter(entry)

    return hook
