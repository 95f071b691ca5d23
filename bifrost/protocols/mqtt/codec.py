"""Payloads to values: plain text and numbers, JSON, bifrost's own JSON messages."""

from __future__ import annotations

import json
from typing import Any

from bifrost.model import Quality

__all__ = ["NOT_FOUND", "extract"]

NOT_FOUND = object()


def _plain(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def extract(payload: bytes, path: tuple[str | int, ...]) -> tuple[Any, int | None, int]:
    """``(value, time_ns or None, quality)`` of a payload, following a JSON path.

    A bifrost JSON message (with ``value``, ``time_ns`` and ``quality_code``) gives its
    value, time and quality; a path that does not match gives ``NOT_FOUND``.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return (payload if not path else NOT_FOUND), None, int(Quality.GOOD)
    try:
        document = json.loads(text)
    except ValueError:
        return (_plain(text) if not path else NOT_FOUND), None, int(Quality.GOOD)
    time_ns = None
    quality = int(Quality.GOOD)
    if isinstance(document, dict) and not path and "value" in document:
        stamp = document.get("time_ns")
        time_ns = stamp if isinstance(stamp, int) else None
        code = document.get("quality_code")
        quality = code if isinstance(code, int) and 0 <= code <= 255 else quality
        return document["value"], time_ns, quality
    value: Any = document
    for step in path:
        value = _step(value, step)
        if value is NOT_FOUND:
            return NOT_FOUND, None, int(Quality.BAD_CONFIG)
    return value, time_ns, quality


def _step(value: Any, step: str | int) -> Any:
    if isinstance(step, int):
        if isinstance(value, list) and -len(value) <= step < len(value):
            return value[step]
        return NOT_FOUND
    if isinstance(value, dict) and step in value:
        return value[step]
    return NOT_FOUND
