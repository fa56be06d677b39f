from __future__ import annotations

from pathlib import Path

import pytest

import smartretry
from smartretry import Engine, dead_letter_on_give_up, smart_retry


def test_a_job_given_up_on_lands_in_the_queue_with_its_history(tmp_path: Path, fast: None) -> None:
    engine = Engine(seed=3, store=f"sqlite:///{tmp_path / 'state.db'}")
    engine.update_guardrails({"adaptive_throttle": False, "min_retries_per_sec": 1000.0})
    hook = dead_letter_on_give_up(
        engine=engine,
        payload=lambda state: {"order": state.args[0]},
        payload_ref=lambda state: f"s3://orders/{state.args[0]}.json",
    )

    @smart_retry(engine=engine, job_type="order_sync", tenant="acme", on_give_up=hook)
    def sync(order: str) -> None:
        raise TimeoutError(f"{order} timed out")

    with pytest.raises(TimeoutError):
        sync("o-7")
    (entry,) = engine.dead_letters(status="open")
    assert entry["job_type"] == "order_sync" and entry["tenant"] == "acme"
    assert entry["job_id"].startswith("order_sync#")
    assert "no attempts left" in entry["failure_reason"]
    assert [a["attempt_number"] for a in entry["attempts"]] == [1, 2, 3, 4, 5, 6]
    assert entry["error_class"] == "TimeoutError"
    assert entry["payload"] == {"order": "o-7"}
    assert entry["payload_ref"] == "s3://orders/o-7.json"


def test_a_payload_over_the_limit_is_refused_naming_it(engine: Engine, fast: None) -> None:
    hook = dead_letter_on_give_up(engine=engine, payload=lambda state: "x" * (2 << 20))

    @smart_retry(engine=engine, job_type="export", on_give_up=hook)
    def export() -> None:
        raise TimeoutError("slow")

    with pytest.raises(smartretry.InvalidInputError) as err:
        export()
    assert err.value.field == "payload"
