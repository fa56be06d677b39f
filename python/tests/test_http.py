"""HTTP status and Retry-After are read by duck typing from the shapes of requests, httpx,
aiohttp and urllib errors (none imported), and from a real local HTTP server."""

from __future__ import annotations

import email.utils
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from conftest import serve
from smartretry import Engine, RetryCallState, smart_retry


class CaseInsensitiveHeaders(dict):  # type: ignore[type-arg]
    """Like requests' CaseInsensitiveDict / httpx.Headers / multidict's CIMultiDict."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        for k, v in self.items():
            if k.lower() == key.lower():
                return v
        return default


class FakeResponse:
    def __init__(self, status_code: int, headers: Optional[Dict[str, str]] = None) -> None:
        self.status_code = status_code
        self.headers = CaseInsensitiveHeaders(headers or {})


class RequestsHTTPError(IOError):
    """requests.exceptions.HTTPError: `.response.status_code`, `.response.headers`."""

    def __init__(self, status: int, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(f"{status} Server Error")
        self.response = FakeResponse(status, headers)
        self.request = object()


class HTTPStatusError(Exception):
    """httpx.HTTPStatusError: same shape as requests, different class."""

    def __init__(self, status: int, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(f"Server error '{status}'")
        self.response = FakeResponse(status, headers)


class ClientResponseError(Exception):
    """aiohttp.ClientResponseError: `.status` and `.headers` on the exception."""

    def __init__(self, status: int, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(f"{status}, message='Service Unavailable'")
        self.status = status
        self.headers = CaseInsensitiveHeaders(headers or {}) if headers is not None else None
        self.message = "Service Unavailable"


def first_decision(engine: Engine, error: BaseException, **options: Any) -> Any:
    dead: List[RetryCallState] = []

    @smart_retry(engine=engine, job_type="http_call", max_attempts=2, on_give_up=dead.append, **options)
    def call() -> None:
        raise error

    with pytest.raises(type(error)):
        call()
    return dead[0].history[0].decision


@pytest.mark.parametrize("cls", [RequestsHTTPError, HTTPStatusError, ClientResponseError])
def test_status_names_the_failure(engine: Engine, fast: None, cls: Any) -> None:
    d = first_decision(engine, cls(503))
    assert d.policy == "service_unavailable"
    assert d.error_class == "service_unavailable"  # learned per status kind, not per class
    d = first_decision(engine, cls(404))
    assert not d.should_retry and "permanent" in d.rationale


@pytest.mark.parametrize("cls", [RequestsHTTPError, HTTPStatusError, ClientResponseError])
def test_retry_after_seconds_is_a_floor(engine: Engine, fast: None, cls: Any) -> None:
    d = first_decision(engine, cls(429, {"retry-after": "20"}))
    assert d.policy == "rate_limit"
    assert 20_000 <= d.delay_ms <= 22_000  # never earlier than the server asked
    assert "Retry-After" in d.rationale


def test_retry_after_http_date(engine: Engine, fast: None) -> None:
    when = email.utils.formatdate(time.time() + 40, usegmt=True)
    d = first_decision(engine, RequestsHTTPError(429, {"Retry-After": when}))
    assert "Retry-After" in d.rationale
    assert 38_000 <= d.delay_ms <= 44_000


def test_unusable_foreign_values_are_ignored(engine: Engine, fast: None) -> None:
    d = first_decision(engine, RequestsHTTPError(503, {"Retry-After": "soon"}))
    assert d.should_retry and "Retry-After" not in d.rationale
    d = first_decision(engine, HTTPStatusError(999))  # no such status: decided on the class name
    assert d.should_retry
    err = ClientResponseError(503)
    err.headers = None
    assert first_decision(engine, err).policy == "service_unavailable"


def test_urllib_http_error(engine: Engine, fast: None) -> None:
    err = urllib.error.HTTPError("http://x", 429, "Too Many Requests", {"Retry-After": "15"}, None)  # type: ignore[arg-type]
    d = first_decision(engine, err)
    assert d.policy == "rate_limit" and 15_000 <= d.delay_ms <= 16_500


def test_a_returned_response_can_be_retried_on_its_status(engine: Engine, fast: None) -> None:
    responses = iter([FakeResponse(503), FakeResponse(200)])
    history: List[RetryCallState] = []

    @smart_retry(engine=engine, after=history.append, retry_if=lambda r: getattr(r, "status_code", 200) >= 500)
    def get() -> FakeResponse:
        return next(responses)

    assert get().status_code == 200
    assert history[0].history[0].http_status == 503
    decision = history[0].history[0].decision
    assert decision is not None and decision.policy == "service_unavailable"


# -- a real server on 127.0.0.1 -------------------------------------------------------


def get(url: str) -> bytes:
    """urllib, closing the error's response (a retried HTTPError is kept in the history)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as e:
        e.close()
        raise


class Handler(BaseHTTPRequestHandler):
    """/flaky/<job>: 503 twice per job, then 200. /limited/<job>: 429 once, then 200."""

    hits: Dict[str, int] = {}
    lock = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            n = self.hits[self.path] = self.hits.get(self.path, 0) + 1
        if self.path.startswith("/flaky/") and n <= 2:
            self.send_response(503)
            self.end_headers()
            return
        if self.path.startswith("/limited/") and n == 1:
            self.send_response(429)
            self.send_header("Retry-After", "30")
            self.end_headers()
            return
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Tuple[str, Dict[str, int]]]:
    yield from serve(Handler)


def test_real_server_503_then_success(engine: Engine, fast: None, server: Tuple[str, Dict[str, int]]) -> None:
    base, hits = server
    states: List[RetryCallState] = []

    @smart_retry(engine=engine, job_type="fetch_report", after=states.append)
    def fetch(job: str) -> bytes:
        return get(f"{base}/flaky/{job}")

    assert fetch("a") == b"ok"
    assert hits["/flaky/a"] == 3
    state = states[-1]
    assert [r.http_status for r in state.history] == [503, 503, None]
    stats = engine.stats("fetch_report", "service_unavailable")
    assert stats.total_attempts == 2 and stats.successful_retries == 1


def test_real_server_429_with_retry_after(engine: Engine, fast: None, server: Tuple[str, Dict[str, int]]) -> None:
    base, hits = server
    states: List[RetryCallState] = []

    @smart_retry(engine=engine, job_type="fetch_quota", after=states.append)
    def fetch(job: str) -> bytes:
        return get(f"{base}/limited/{job}")

    assert fetch("b") == b"ok"
    decision = states[-1].history[0].decision
    assert decision is not None
    assert 30_000 <= decision.delay_ms <= 33_000 and "Retry-After" in decision.rationale
    assert states[-1].history[1].delay_ms == decision.delay_ms  # skipped in testing mode, on the clock
