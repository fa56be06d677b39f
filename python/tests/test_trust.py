"""Decisions a user would defend, through the real decorator against a real local HTTP
server, called with ``requests`` and ``aiohttp``: no cold-start stall, the caller's
``max_attempts`` wins, a hostile Retry-After is capped. Testing mode skips the sleeps;
the waits checked are the ones the engine decided."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Dict, Iterator, List, Tuple

import aiohttp
import pytest
import requests

from conftest import serve
from smartretry import Engine, RetryCallState, smart_retry


class Handler(BaseHTTPRequestHandler):
    """/fail/<n>/<job>: 503 for the first n calls of each job, then 200.
    /hostile/<job>: 429 with Retry-After 99999999999 once, then 200."""

    hits: Dict[str, int] = {}
    lock = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            n = self.hits[self.path] = self.hits.get(self.path, 0) + 1
        parts = self.path.strip("/").split("/")
        if parts[0] == "fail" and n <= int(parts[1]):
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts[0] == "hostile" and n == 1:
            self.send_response(429)
            self.send_header("Retry-After", "99999999999")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Tuple[str, Dict[str, int]]]:
    yield from serve(Handler)


def fetch(url: str) -> str:
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.text


def delays(state: RetryCallState) -> List[int]:
    return [r.decision.delay_ms for r in state.history if r.decision is not None and r.decision.should_retry]


def test_forty_new_functions_in_a_warm_process_retry_at_their_rules_delay(
    fast: None, server: Tuple[str, Dict[str, int]]
) -> None:
    base, _ = server
    engine = Engine(seed=3)  # every guardrail on, throttling included
    engine.record({"job_id": "w", "job_type": "warmup", "attempt_number": 2, "success": True})
    for i in range(40):
        states: List[RetryCallState] = []

        @smart_retry(engine=engine, job_type=f"new_type_{i}", after=states.append)
        def call(job: str) -> str:
            return fetch(f"{base}/fail/1/{job}")

        assert call(f"j{i}") == "ok"
        first = states[0].history[0].decision
        assert first is not None and first.should_retry
        assert first.delay_ms <= 2_400, (i, first.rationale)  # 503: 2 s ± 20 %
        assert "adaptive_throttle" not in first.policy_guardrails, first.rationale


def test_max_attempts_ten_outlasts_the_policys_six(fast: None, server: Tuple[str, Dict[str, int]]) -> None:
    base, hits = server
    states: List[RetryCallState] = []

    @smart_retry(engine=Engine(seed=3), job_type="export", max_attempts=10, after=states.append)
    def call() -> str:
        return fetch(f"{base}/fail/7/export")

    assert call() == "ok"  # the default policy's 6 attempts would have given up
    assert hits["/fail/7/export"] == 8
    assert len(delays(states[-1])) == 7

    @smart_retry(engine=Engine(seed=3), job_type="export", max_attempts=2)
    def fewer() -> str:
        return fetch(f"{base}/fail/7/fewer")

    with pytest.raises(requests.HTTPError):
        fewer()
    assert hits["/fail/7/fewer"] == 2


async def test_aiohttp_503_503_200_waits_seconds_not_a_minute(
    fast: None, server: Tuple[str, Dict[str, int]]
) -> None:
    base, hits = server
    engine = Engine(seed=3)
    engine.record({"job_id": "w", "job_type": "warmup", "attempt_number": 2, "success": True})
    states: List[RetryCallState] = []

    @smart_retry(engine=engine, job_type="report", after=states.append)
    async def call() -> str:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/fail/2/report", raise_for_status=True) as response:
                return await response.text()

    assert await call() == "ok"
    assert hits["/fail/2/report"] == 3
    waits = delays(states[-1])
    assert len(waits) == 2 and sum(waits) <= 7_200, waits  # 2 s and 4 s, ± 20 %


def test_a_hostile_retry_after_is_capped(fast: None, server: Tuple[str, Dict[str, int]]) -> None:
    base, _ = server
    states: List[RetryCallState] = []
    engine = Engine(seed=3)

    @smart_retry(engine=engine, job_type="quota", after=states.append)
    def call() -> str:
        return fetch(f"{base}/hostile/quota")

    assert call() == "ok"
    decision = states[-1].history[0].decision
    assert decision is not None and decision.delay_ms == 300_000, decision.rationale
    assert "capped at the max delay (5m)" in decision.rationale and "h29m" not in decision.rationale
