"""The engine as Python sees it: names, dict keys, typed results, errors naming fields."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import smartretry
from smartretry import Engine, FeaturesDict

T0 = 1_700_000_000_000

FAILURE: FeaturesDict = {
    "job_type": "payment_capture",
    "error_class": "service_unavailable",
    "http_status": 503,
    "tenant": "acme",
    "attempt_number": 1,
    "since_first_failure_ms": 0,
    "retry_after_ms": None,
}


def test_decide_returns_a_typed_decision_with_the_api_shape() -> None:
    engine = Engine(seed=1)
    d = engine.decide(FAILURE, now_ms=T0)
    assert d.should_retry is True
    assert d.delay_ms > 0
    assert d.method == "rules"
    assert d.policy == "service_unavailable"
    assert 0.0 <= d.confidence <= 1.0
    assert "service_unavailable" in d.rationale
    as_dict = d.to_dict()
    for key in (
        "should_retry",
        "delay_ms",
        "max_attempts",
        "confidence",
        "rationale",
        "method",
        "estimated_success",
        "next_evaluation",
        "policy_guardrails",
    ):
        assert key in as_dict, key
    assert as_dict["delay_ms"] == d.delay_ms
    assert as_dict["next_evaluation"].startswith("2023-11-14T22:13:")
    assert "Decision(should_retry=True" in repr(d)


def test_same_seed_same_decision() -> None:
    a = Engine(seed=5).decide(FAILURE, now_ms=T0)
    b = Engine(seed=5).decide(FAILURE, now_ms=T0)
    assert a.to_dict() == b.to_dict()


def test_now_ms_is_optional_and_defaults_to_the_wall_clock() -> None:
    engine = Engine(seed=1)
    d = engine.decide({"job_type": "sync", "attempt_number": 1, "http_status": 503})
    assert d.should_retry
    assert not d.next_evaluation.startswith("2023")
    engine.record({"job_id": "j", "job_type": "sync", "attempt_number": 2, "success": True})
    engine.record_successes("sync")


def test_record_reaches_stats() -> None:
    engine = Engine(seed=1)
    engine.record(
        {
            "job_id": "j1",
            "job_type": "payment_capture",
            "error_class": "service_unavailable",
            "attempt_number": 2,
            "tenant": "acme",
            "delay_ms": 8000,
            "since_first_failure_ms": 8000,
            "success": True,
        },
        now_ms=T0 + 8_000,
    )
    stats = engine.stats("payment_capture", "service_unavailable", now_ms=T0 + 10_000)
    assert stats.total_attempts == 1
    assert stats.successful_retries == 1
    assert stats.failed_retries == 0
    assert stats.avg_delay_ms == 8000
    assert stats.success_rate == 1.0
    assert stats.to_dict()["job_type"] == "payment_capture"
    assert isinstance(stats.buckets, list)
    window = engine.stats("payment_capture", "service_unavailable", window_ms=1_000, now_ms=T0 + 10_000)
    assert window.total_attempts == 0


def test_preview_lays_out_the_schedule() -> None:
    engine = Engine(seed=1)
    p = engine.preview({"job_type": "sync", "attempt_number": 1, "http_status": 503}, max_attempts=4, now_ms=T0)
    assert p.current_attempt == 1
    assert p.job_id == "sync_preview"
    assert len(p.timeline) == 3  # the 4 attempts laid out, of the policy's 6
    assert p.timeline[0]["attempt_number"] == 2
    assert [d.should_retry for d in p.recommendations] == [True, True, True]  # 4 of 6: more to come
    assert p.features["http_status"] == 503
    assert p.to_dict()["generated_at"] == p.generated_at


def test_policies_add_remove() -> None:
    engine = Engine(seed=1)
    names = [p["name"] for p in engine.policies()]
    assert {"validation", "rate_limit", "service_unavailable", "fallback"} <= set(names)
    engine.add_policy(
        {
            "name": "payments",
            "error_patterns": ["503"],
            "job_type_patterns": ["payment_.*"],
            "max_attempts": 6,
            "base_delay_ms": 500,
            "max_delay_ms": 4000,
            "priority": 500,
        }
    )
    d = engine.decide({"job_type": "payment_capture", "attempt_number": 1, "http_status": 503}, now_ms=T0)
    assert d.policy == "payments"
    assert d.max_attempts == 6
    removed = engine.remove_policy("payments")
    assert removed["name"] == "payments"
    with pytest.raises(smartretry.NotFoundError) as err:
        engine.remove_policy("payments")
    assert isinstance(err.value, LookupError)
    assert err.value.kind == "not_found"


def test_guardrails_update_and_emergency_stop() -> None:
    engine = Engine(seed=1)
    assert engine.guardrails()["max_attempts"] == 10
    updated = engine.update_guardrails({"max_delay_ms": 3000})
    assert updated["max_delay_ms"] == 3000
    assert engine.guardrails()["max_delay_ms"] == 3000
    engine.emergency_stop(True)
    assert engine.is_emergency_stopped()
    d = engine.decide({"job_type": "sync", "attempt_number": 1, "http_status": 503}, now_ms=T0)
    assert not d.should_retry
    assert d.policy_guardrails == ["emergency_stop"]
    assert d.method == "guardrail"
    engine.emergency_stop(False)
    assert engine.decide({"job_type": "sync", "attempt_number": 1, "http_status": 503}, now_ms=T0).should_retry


def test_strategy_metrics_and_breakers_are_dicts() -> None:
    engine = Engine(seed=1)
    engine.decide(FAILURE, now_ms=T0)
    assert engine.strategy()["name"] == "default"
    assert engine.metrics()["decisions_total"] == 1
    assert isinstance(engine.breakers(now_ms=T0), list)
    assert engine.seed == 1
    assert repr(engine) == "Engine(seed=1)"


def test_an_unreadable_retry_after_header_is_no_hint() -> None:
    # A server's header, not the caller's input: the decision goes on without it.
    d = Engine(seed=1).decide({"job_type": "a", "attempt_number": 1, "http_status": 429, "retry_after": "soon"}, now_ms=T0)
    assert d.should_retry and "Retry-After" not in d.rationale


@pytest.mark.parametrize(
    ("features", "field"),
    [
        ({"job_type": "a", "attempt_number": 1, "http_status": 700}, "http_status"),
        ({"job_type": "a", "attempt_number": 0}, "attempt_number"),
        ({"job_type": "a", "attempt_number": "1"}, "attempt_number"),
        ({"job_type": "a", "attempt_number": True}, "attempt_number"),
        ({"attempt_number": 1}, "job_type"),
        ({"job_type": "", "attempt_number": 1}, "job_type"),
        ({"job_type": "a", "attempt_number": 1, "health": {"cpu": float("nan")}}, "health.cpu"),
        ({"job_type": "a", "attempt_number": 1, "retry_after": "5\x00"}, "retry_after"),
        ({"job_type": "a", "attempt_number": 1, "tenant": object()}, "tenant"),
        ({"job_type": "a", "attempt_number": 1, "since_first_failure_ms": -1}, "since_first_failure_ms"),
    ],
)
def test_invalid_features_name_the_field(features: dict, field: str) -> None:  # type: ignore[type-arg]
    engine = Engine(seed=1)
    with pytest.raises(smartretry.InvalidInputError) as err:
        engine.decide(features, now_ms=T0)
    e = err.value
    assert e.field == field
    assert e.kind == "invalid_input"
    assert e.reason
    assert isinstance(e, ValueError) and isinstance(e, smartretry.Error)
    assert field in str(e)


def test_invalid_attempt_names_the_field() -> None:
    engine = Engine(seed=1)
    with pytest.raises(smartretry.InvalidInputError) as err:
        engine.record({"job_id": "j", "job_type": "t", "attempt_number": 1})
    assert err.value.field == "success"
    with pytest.raises(smartretry.InvalidInputError) as err:
        engine.record({"job_id": "j", "job_type": "t", "attempt_number": 1, "success": 1})
    assert err.value.field == "success"
    with pytest.raises(smartretry.InvalidInputError) as err:
        engine.record_successes("", None, 3)
    assert err.value.field == "job_type"


def test_typed_and_generic_routes_agree() -> None:
    """A plain dict takes the fast extraction; a Mapping subclass the generic route."""

    class Features(dict):  # type: ignore[type-arg]
        pass

    features = {
        "job_type": "sync",
        "attempt_number": 2,
        "error_class": "TimeoutError",
        "error_code": 504,
        "tenant": "acme",
        "job_id": "j-1",
        "since_first_failure_ms": 1500,
        "since_last_failure_ms": 1500,
        "idempotent": True,
        "priority": "high",
        "health": {"cpu": 0.5, "queue": 3},
    }
    a = Engine(seed=3).decide(features, now_ms=T0)
    b = Engine(seed=3).decide(Features(features), now_ms=T0)
    assert a.to_dict() == b.to_dict()
    # Keys built at run time (not interned) are recognised by their text.
    built = {"".join(["job", "_", k[4:]]) if k.startswith("job_") else k: v for k, v in features.items()}
    assert Engine(seed=3).decide(built, now_ms=T0).to_dict() == a.to_dict()
    # An unknown (misspelt) key is refused, named, whichever route is taken.
    for route in (dict, Features):
        with pytest.raises(smartretry.InvalidInputError) as err:
            Engine(seed=3).decide(route({**features, "max_atempts": 2}), now_ms=T0)
        assert err.value.field == "max_atempts"


def test_config_as_dict_and_as_file(tmp_path: Path) -> None:
    config = {"strategy": {"guardrails": {"max_attempts": 2}}}
    assert Engine(config=config).guardrails()["max_attempts"] == 2
    path = tmp_path / "smartretry.json"
    path.write_text(json.dumps(config))
    assert Engine(config=path).guardrails()["max_attempts"] == 2
    assert Engine(config=str(path)).guardrails()["max_attempts"] == 2


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(smartretry.ConfigError) as err:
        Engine(config={"strategy": {"guardrails": {"max_attempts": 0}}})
    assert err.value.field == "strategy.guardrails.max_attempts"
    assert isinstance(err.value, ValueError)
    with pytest.raises(smartretry.ConfigError) as err:
        Engine(config={"strategy": {"bayesian_threshold": "high"}})
    assert err.value.field == "strategy.bayesian_threshold"
    with pytest.raises(smartretry.ConfigError) as err:
        Engine(config=tmp_path / "missing.json")
    assert "missing.json" in str(err.value)
    with pytest.raises(smartretry.ConfigError) as err:
        Engine(store="cassandra")
    assert err.value.field == "store"
    engine = Engine()
    with pytest.raises(smartretry.ConfigError) as err:
        engine.update_guardrails({"max_attempts": 0})
    assert err.value.field == "max_attempts"
    assert engine.guardrails()["max_attempts"] == 10


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY_BAYESIAN_THRESHOLD", "0.8")
    assert Engine(env=True).strategy()["bayesian_threshold"] == 0.8
    assert Engine().strategy()["bayesian_threshold"] == 0.7
    monkeypatch.setenv("RETRY_SAMPLE_RATE", "1.5")
    with pytest.raises(smartretry.ConfigError) as err:
        Engine(env=True)
    assert err.value.field == "RETRY_SAMPLE_RATE"


def test_values_without_json_form_are_named() -> None:
    engine = Engine(seed=1)
    with pytest.raises(smartretry.InvalidInputError) as err:
        engine.decide({"job_type": "a", "attempt_number": 1, "health": {"cpu": object()}})
    assert err.value.field == "health.cpu"
    with pytest.raises(smartretry.InvalidInputError) as err:
        engine.decide({"job_type": "a", "attempt_number": 1, 3: "x"})  # type: ignore[dict-item]
    assert "keys must be strings" in str(err.value)
    with pytest.raises(smartretry.InvalidInputError):
        engine.decide({"job_type": "a", "attempt_number": 2**80})


def test_one_engine_serves_many_threads() -> None:
    engine = Engine(seed=1)
    errors: list = []  # type: ignore[type-arg]

    def work(i: int) -> None:
        try:
            for n in range(200):
                engine.decide({"job_type": f"job{i}", "attempt_number": 1, "http_status": 503}, now_ms=T0 + n)
                engine.record(
                    {"job_id": f"{i}-{n}", "job_type": f"job{i}", "attempt_number": 2, "success": n % 2 == 0},
                    now_ms=T0 + n,
                )
                engine.preview({"job_type": f"job{i}", "attempt_number": 1}, max_attempts=3, now_ms=T0)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert engine.metrics()["decisions_total"] == 800
