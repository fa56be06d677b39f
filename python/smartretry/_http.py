"""What an outcome says about HTTP, read by duck typing (no HTTP library imported).

- requests ``HTTPError`` / httpx ``HTTPStatusError``: ``exc.response.status_code``,
  ``exc.response.headers``;
- aiohttp ``ClientResponseError``: ``exc.status``, ``exc.headers``;
- urllib ``HTTPError``: ``exc.code``/``exc.status``, ``exc.headers``;
- a response object returned by the call (with ``retry_if``): ``.status_code`` or
  ``.status``, ``.headers``.

Values are passed to the engine as found; the engine validates and parses them (an
HTTP-date or delta-seconds ``Retry-After``).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple


def _get(obj: Any, name: str) -> Any:
    """`getattr` that treats any failure as absence (foreign properties may raise anything)."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _status_of(obj: Any) -> Optional[int]:
    for name in ("status_code", "status"):
        value = _get(obj, name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _header(headers: Any, name: str) -> Optional[str]:
    get = getattr(headers, "get", None)
    if get is None:
        return None
    try:
        value = get(name)
        if value is None:
            value = get(name.lower())
    except Exception:  # a foreign mapping that cannot be asked: no hint
        return None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return value if isinstance(value, str) else None


def http_info(obj: Any) -> Tuple[Optional[int], Optional[str]]:
    """``(status, retry_after_header)`` of an exception or a response, or ``(None, None)``."""
    try:  # the common case: plain attributes, or none of them
        status = getattr(obj, "status_code", None)
        if status is None:
            status = getattr(obj, "status", None)
        headers = getattr(obj, "headers", None)
        response = getattr(obj, "response", None)
        code = getattr(obj, "code", None) if status is None and response is None else None
    except Exception:  # a property that raises: ask each attribute carefully
        return _careful(obj)
    if status is None and headers is None and response is None and code is None:
        return None, None
    if not (isinstance(status, int) and not isinstance(status, bool)):
        status = None
    return _finish(obj, status, headers, response)


def _careful(obj: Any) -> Tuple[Optional[int], Optional[str]]:
    return _finish(obj, _status_of(obj), _get(obj, "headers"), _get(obj, "response"))


def _finish(obj: Any, status: Optional[int], headers: Any, response: Any) -> Tuple[Optional[int], Optional[str]]:
    if response is not None:
        if status is None:
            status = _status_of(response)
        if headers is None:
            headers = _get(response, "headers")
    if status is None:
        code = _get(obj, "code")  # urllib.error.HTTPError on older Pythons
        if isinstance(code, int) and not isinstance(code, bool) and headers is not None:
            status = code
    retry_after = _header(headers, "Retry-After") if headers is not None else None
    return status, retry_after
