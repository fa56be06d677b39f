from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator, Tuple, Type

import pytest

import smartretry
from smartretry import Engine


def quiet_engine(seed: int = 7) -> Engine:
    """A real engine whose shared guardrails (budget, throttling) stay out of the way,
    so a test sees the policy and the tier it is about."""
    engine = Engine(seed=seed)
    engine.update_guardrails({"adaptive_throttle": False, "min_retries_per_sec": 1000.0})
    return engine


@pytest.fixture
def engine() -> Engine:
    return quiet_engine()


@pytest.fixture(autouse=True)
def fresh_default_engine() -> Iterator[Engine]:
    """Each test gets its own process-wide engine; testing mode is off unless asked for."""
    engine = quiet_engine(seed=11)
    smartretry.set_default_engine(engine)
    smartretry.set_testing(False)
    yield engine
    smartretry.set_testing(False)
    smartretry.set_default_engine(None)


@pytest.fixture
def fast() -> Iterator[None]:
    """Testing mode: no real sleeping, decisions and records as usual."""
    with smartretry.testing():
        yield


def serve(handler: Type[BaseHTTPRequestHandler]) -> Iterator[Tuple[str, Dict[str, int]]]:
    """A real HTTP server on 127.0.0.1 for a test: its base URL and the handler's hit
    counts per path (the handler class keeps them in ``hits``)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    hits: Dict[str, int] = {}
    handler.hits = hits  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()
