"""Testing mode: retries run at full speed.

While it is on, the retry helpers skip real sleeping but still ask the engine and
record every outcome, on a virtual clock that advances by each skipped delay (so the
engine learns the delays it chose, not zero). Like stamina's testing mode::

    with smartretry.testing():
        assert flaky_call() == "ok"     # retried without waiting

    smartretry.set_testing(True)        # e.g. in a pytest fixture or conftest.py
"""

from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["testing", "set_testing", "is_testing"]

_enabled = False


def set_testing(enabled: bool) -> None:
    """Turn testing mode on or off for the whole process."""
    global _enabled
    _enabled = bool(enabled)


def is_testing() -> bool:
    return _enabled


@contextlib.contextmanager
def testing(enabled: bool = True) -> Iterator[None]:
    """Testing mode inside a ``with`` block; restores the previous mode after."""
    global _enabled
    previous = _enabled
    _enabled = bool(enabled)
    try:
        yield
    finally:
        _enabled = previous
