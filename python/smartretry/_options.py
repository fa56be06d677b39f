"""The options of ``@smart_retry`` and ``retrying()``, checked when the helper is built.

Names, types, ranges and defaults are the engine's options contract
(``core/src/options.rs``, docs/options.md): every option goes to the engine's check
(``validate_retry_options``), which names the option on error and converts durations to
ms. Only what the engine cannot see is checked here: that exception types are exception
classes, that ``engine`` is an :class:`Engine`, that ``stop`` is a :class:`Stop`, and that
a predicate is async only where it can be awaited.
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, Optional, Tuple, Type

from ._native import Engine, validate_retry_options
from .control import Stop
from .errors import InvalidTypeError

__all__ = ["check", "check_sync_predicates", "exception_types", "option_type_error", "precheck"]

def option_type_error(name: str, reason: str) -> InvalidTypeError:
    return InvalidTypeError(f"invalid type: {name}: {reason}", name, reason)


def exception_types(name: str, value: Any) -> Tuple[Type[BaseException], ...]:
    """An exception class or a tuple/list of them, as a tuple."""
    items = (value,) if isinstance(value, type) else value
    if isinstance(items, (tuple, list)) and all(isinstance(t, type) and issubclass(t, BaseException) for t in items):
        return tuple(items)
    return_type = type(value).__name__
    raise option_type_error(name, f"expected an exception class or a tuple of them, got {return_type} {value!r}")


def check(given: Dict[str, Any], *, is_async: Optional[bool]) -> Dict[str, Any]:
    """The engine's check of ``given`` (the options a caller gave, by their Python names),
    plus the host's: returns the engine's answer (``deadline_ms``, ``timeout_ms``,
    ``backoff``…). ``is_async``: whether the wrapped function is a coroutine function
    (``None``: not known yet, as for ``retrying()``, which has both forms)."""
    checked: Dict[str, Any] = validate_retry_options(given)
    engine = given.get("engine")
    if engine is not None and not isinstance(engine, Engine):
        raise option_type_error("engine", f"expected a smartretry.Engine, got {type(engine).__name__}")
    stop = given.get("stop")
    if stop is not None and not isinstance(stop, Stop):
        raise option_type_error(
            "stop", f"expected stop_after_attempt(n) | stop_after_delay(s) | stop_when(f), got {type(stop).__name__}"
        )
    if is_async is False:
        _refuse_async_predicates(given.get("retry_if"), given.get("stop_if"), stop)
    if given.get("timeout") is not None and is_async is False:
        raise option_type_error("timeout", "needs an async function: a sync call cannot be cancelled")
    return checked


def precheck(given: Dict[str, Any]) -> None:
    """What can be checked before the function is known (``@smart_retry(...)``)."""
    check(given, is_async=None)
    exception_types("retry_on", given.get("retry_on", Exception))
    exception_types("give_up_on", given.get("give_up_on") or ())


def check_sync_predicates(policy: Any) -> None:
    """For a sync loop (``for attempt in retrying(...)``): no predicate may be async."""
    _refuse_async_predicates(policy.retry_if, None, Stop(predicates=policy.stop_if))


def _refuse_async_predicates(retry_if: Any, stop_if: Any, stop: Any) -> None:
    predicates = [("retry_if", retry_if), ("stop_if", stop_if)]
    if isinstance(stop, Stop):
        predicates += [("stop", p) for p in stop.predicates]
    for name, predicate in predicates:
        if predicate is not None and _is_async_callable(predicate):
            raise option_type_error(name, "an async predicate needs async code: a sync call cannot await it")


def _is_async_callable(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))
