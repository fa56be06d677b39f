"""Delivery of lifecycle events to Python callbacks (``Engine.on``).

Each ``on`` gets its own bounded subscription and a daemon thread that waits on it with
the GIL released and calls the callback. The engine never waits for a callback: when
one is slow, its queue fills and further events are dropped (``Subscription.dropped``,
``metrics()["events_dropped_total"]``). A callback that raises is logged and the
dispatcher goes on.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from ._native import Subscription
from .types import EventDict

__all__ = ["listen"]

logger = logging.getLogger("smartretry")


def listen(subscription: Subscription, callback: Callable[[EventDict], object]) -> Callable[[], None]:
    """Start calling ``callback`` with each event; returns the unsubscribe function."""
    if not callable(callback):
        subscription.close()
        raise TypeError("callback must be callable")

    def dispatch() -> None:
        for event in subscription:
            try:
                callback(event)
            except Exception:
                logger.exception("smartretry: event callback %r failed on %s", callback, event.get("type"))

    thread = threading.Thread(target=dispatch, name="smartretry-events", daemon=True)
    thread.start()

    def unsubscribe() -> None:
        """Stop; events queued before the call are still delivered before it returns."""
        subscription.close()
        if threading.current_thread() is not thread:
            thread.join()

    return unsubscribe
