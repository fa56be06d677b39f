"""Exceptions of smartretry.

Engine errors map one to one from the core's error kinds (the native module raises
them): every one is a :class:`Error`; bad input and bad configuration are also
:class:`ValueError`, a value of the wrong type also a :class:`TypeError`, an unknown
name also a :class:`LookupError`. ``field`` names
what was wrong (``"http_status"``, ``"strategy.guardrails.max_attempts"``) and
``reason`` says why.

:class:`RetryError` is different: it is raised by the retry helpers, not the engine,
when retries end and the caller asked for it (``raise_retry_error=True``) or when the
last attempt returned a result that ``retry_if`` rejected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional

if TYPE_CHECKING:
    from ._state import AttemptRecord, RetryCallState

__all__ = [
    "Error",
    "InvalidInputError",
    "InvalidTypeError",
    "ConfigError",
    "NotFoundError",
    "StoreError",
    "ModelError",
    "RetryError",
]


class Error(Exception):
    """Base class of every error the engine raises."""

    kind: str = "error"

    def __init__(
        self,
        message: str,
        field: Optional[str] = None,
        reason: Optional[str] = None,
        kind: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: The offending field, e.g. ``"http_status"``; ``None`` for kinds without one.
        self.field = field
        #: Why it was rejected, without the field name.
        self.reason = reason if reason is not None else message
        if kind is not None:
            self.kind = kind


class InvalidInputError(Error, ValueError):
    """A request value is missing, malformed or out of range."""

    kind = "invalid_input"


class InvalidTypeError(Error, TypeError):
    """A value of the wrong type: a string where a number is due, a number where a
    function is (``@smart_retry(deadline="5")``, ``retry_if=3``)."""

    kind = "invalid_type"


class ConfigError(Error, ValueError):
    """A configuration value (file, environment variable or update) is invalid."""

    kind = "config"


class NotFoundError(Error, LookupError):
    """A named thing (policy, learned key, model) does not exist."""

    kind = "not_found"


class StoreError(Error):
    """The state store failed."""

    kind = "store"


class ModelError(Error):
    """A model could not be loaded or run."""

    kind = "model"


class RetryError(Exception):
    """Retries ended without success.

    ``state`` is the whole call (``state.history`` lists every attempt);
    ``last_exception`` / ``last_result`` is what the last attempt produced.
    """

    def __init__(self, state: RetryCallState) -> None:
        self.state = state
        last = state.history[-1] if state.history else None
        self.last_exception: Optional[BaseException] = last.exception if last else None
        self.last_result: Any = last.result if last else None
        super().__init__(
            f"{state.job_type}: gave up after {state.attempt_number} attempt(s): {state.give_up_reason}"
        )

    @property
    def history(self) -> List[AttemptRecord]:
        return self.state.history
