from __future__ import annotations

from typing import Iterator

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
