"""Stores from Python: a SQLite file that outlives the engine, a Redis shared by two
engines (a real redis-server on a free loopback port), the dead-letter queue."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

import smartretry
from smartretry import Engine

T0 = 1_700_000_000_000


def teach(engine: Engine, job: str, n: int = 40) -> None:
    for i in range(n):
        t = T0 + i * 1_000
        engine.record(
            {"job_id": f"f{i}", "job_type": job, "attempt_number": 2, "success": False,
             "error_class": "timeout", "delay_ms": 2_000, "since_first_failure_ms": 2_000},
            now_ms=t,
        )
        ok_at = 6_000 + (i % 7) * 1_000
        engine.record(
            {"job_id": f"s{i}", "job_type": job, "attempt_number": 3, "success": True,
             "error_class": "timeout", "delay_ms": ok_at - 2_000, "since_first_failure_ms": ok_at},
            now_ms=t,
        )


FAILURE = {"job_type": "export", "attempt_number": 1, "error_class": "timeout", "since_first_failure_ms": 0}
CALM = {"strategy": {"guardrails": {"adaptive_throttle": False}}}


def test_a_sqlite_store_outlives_the_engine(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = Engine(seed=3, config=CALM, store=url)
    teach(first, "export")
    first.flush()
    assert first.metrics()["store"].startswith("sqlite://")
    del first
    again = Engine(seed=3, config=CALM, store=url)
    assert again.decide(FAILURE, now_ms=T0 + 100_000).method == "bayesian"
    assert Engine(seed=3, config=CALM).decide(FAILURE, now_ms=T0 + 100_000).method == "rules"


def test_dead_letters_round_trip(tmp_path: Path) -> None:
    engine = Engine(store=f"sqlite:///{tmp_path / 'dlq.db'}")
    entry = engine.add_dead_letter(
        {"job_id": "o-1", "job_type": "invoice", "failure_reason": "no attempts left",
         "payload_ref": "s3://bucket/o-1.json",
         "attempts": [{"job_id": "o-1", "job_type": "invoice", "attempt_number": 1, "success": False}]},
    )
    assert entry["status"] == "open" and entry["id"].startswith("dlq_")
    assert engine.dead_letter_count() == 1
    assert [d["job_id"] for d in engine.dead_letters(status="open")] == ["o-1"]
    assert engine.retry_dead_letter(entry["id"])["manual_retries"] == 1
    resolved = engine.resolve_dead_letter(entry["id"], "sent by hand")
    assert resolved["resolution_note"] == "sent by hand"
    assert engine.dead_letter(entry["id"])["attempts"][0]["attempt_number"] == 1
    with pytest.raises(smartretry.InvalidInputError) as err:
        engine.dead_letters(status="lost")
    assert err.value.field == "status"
    with pytest.raises(smartretry.NotFoundError):
        engine.dead_letter("dlq_nope")


def test_a_bad_store_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(smartretry.ConfigError) as err:
        Engine(store="ftp://elsewhere")
    assert err.value.field == "store"
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"Z" * 8192)
    with pytest.raises(smartretry.StoreError) as store_err:
        Engine(store=f"sqlite:///{corrupt}")
    assert str(corrupt) in str(store_err.value)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    assert server, "redis-server must be installed (scripts/ensure-redis.sh)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(1000):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


def test_two_engines_on_one_redis_learn_and_stop_together(redis_url: str) -> None:
    a = Engine(seed=1, config=CALM, store=redis_url)
    teach(a, "export")
    a.flush()
    b = Engine(seed=1, config=CALM, store=redis_url)
    assert b.decide(FAILURE, now_ms=T0 + 100_000).method == "bayesian", "b starts warm"
    a.emergency_stop(True)
    a.flush()
    for _ in range(3000):
        if b.is_emergency_stopped():
            break
        time.sleep(0.01)
    assert b.is_emergency_stopped()
