"""The API's JSON parser: DRF's, with the bounds a body must keep to be a 400 rather than a 500.

- Nesting: CPython's decoder recurses once per level and raised RecursionError (a 500 with a traceback) on a body
  1,500 levels deep, before any view saw it. Bodies nest at most MAX_DEPTH levels; no request of the API needs more
  than four.
- Numbers: `1e999` decoded to infinity, which no field can hold (an id of infinity reached the database as a
  500). A number must be finite, as NaN and Infinity already had to be (DRF's strict JSON)."""

from __future__ import annotations

import codecs
import json
import math
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"Number out of range: {text[:40]}")
    return number


def _refuse_constant(name: str) -> None:
    raise ValueError(f"Out of range float values are not JSON compliant: {name}")


def too_deep(data: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and objects in `data` nest deeper than `limit` levels (without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        too_deep_error = ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
        try:
            data = json.load(codecs.getreader(encoding)(stream), parse_constant=_refuse_constant, parse_float=_finite)
        except RecursionError:
            raise too_deep_error from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if too_deep(data):
            raise too_deep_error
        return data
