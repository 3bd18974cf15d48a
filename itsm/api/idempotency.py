"""The Idempotency-Key header on POSTs that create: `@idempotent` on a viewset's `create`, and its schema.

A retry of a POST that carries the same key and body gets the first response again (with `Idempotent-Replayed:
true`) instead of creating a second object. The rules are in itsm.services.idempotency; docs/api.md explains them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from itsm.models import IdempotencyKey
from itsm.services.idempotency import (
    KeyInUse,
    KeyMismatch,
    idempotency_claim,
    idempotency_complete,
    idempotency_release,
    request_fingerprint,
)

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
STORED_HEADERS = ("Location", "ETag")
_PRINTABLE = re.compile(r"^[\x20-\x7e]+$")

# What _parse_key takes: printable ASCII without surrounding spaces, and if quoted, not blank inside the quotes.
KEY_PATTERN = r'^([!#-~]([ -~]*[!-~])?|"|"[ -~]*[!#-~]|"[ -~]*[!-~][ -~]*")$'

IDEMPOTENCY_KEY = OpenApiParameter(
    HEADER,
    {"type": "string", "minLength": 1, "maxLength": IdempotencyKey.MAX_LENGTH, "pattern": KEY_PATTERN},
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "A unique value per request (e.g. a UUID), at most 255 printable ASCII characters. A retry with the same "
        "key and body gets the first response again, with the header `Idempotent-Replayed: true`. "
        "Remembered for 24 hours (ITSM_IDEMPOTENCY_KEY_TTL_HOURS)."
    ),
)


class IdempotencyError(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


IDEMPOTENCY_RESPONSES = {
    409: OpenApiResponse(IdempotencyError, description="A request with this Idempotency-Key is still running."),
    422: OpenApiResponse(
        IdempotencyError, description="This Idempotency-Key was used with another body or on another endpoint."
    ),
}


def idempotent(create: Callable[..., Response]) -> Callable[..., Response]:
    """Wrap a viewset's `create` so that a request with an Idempotency-Key does its work at most once."""

    @functools.wraps(create)
    def wrapper(view: APIView, request: Request, *args: Any, **kwargs: Any) -> Response:
        raw = request.headers.get(HEADER)
        if raw is None or not request.user.is_authenticated:
            return create(view, request, *args, **kwargs)
        return _respond_once(view, request, _parse_key(raw), lambda: create(view, request, *args, **kwargs))

    return wrapper


def _parse_key(raw: str) -> str:
    """The key; the draft's structured-field form (a quoted string, `"abc"`) is accepted too, so `"abc"` and `abc`
    are one key. Bad keys are a 400: blank, longer than 255 characters, or not printable ASCII."""
    key = raw.strip()
    if not key:
        raise ValidationError({HEADER: ["The key may not be blank."]})
    if len(key) > IdempotencyKey.MAX_LENGTH:
        raise ValidationError({HEADER: [f"Ensure the key has at most {IdempotencyKey.MAX_LENGTH} characters."]})
    if not _PRINTABLE.match(key):
        raise ValidationError({HEADER: ["The key may contain printable ASCII characters only."]})
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
        if not key.strip():
            raise ValidationError({HEADER: ["The key may not be blank."]})
    return key


def _respond_once(view: APIView, request: Request, key: str, work: Callable[[], Response]) -> Response:
    data = request.data  # a malformed body is a 400 here, before the key is taken
    if hasattr(data, "lists"):  # a QueryDict (an empty body): plain lists, so it fingerprints like JSON
        data = dict(data.lists())
    try:
        record = idempotency_claim(
            user=request.user,
            key=key,
            method=request.method or "",
            path=request.path,
            fingerprint=request_fingerprint(data),
        )
    except KeyInUse as exc:
        return _in_use(exc)
    except KeyMismatch as exc:
        return Response({"detail": str(exc), "code": "idempotency_key_reused"}, status=422)
    if record.state == IdempotencyKey.State.COMPLETED:
        return _replay(record)
    try:
        with transaction.atomic():  # the work and the stored response commit together
            response = _attempt(view, work)
            if response.status_code >= 500:
                raise _NotStored(response)
            idempotency_complete(
                record=record,
                status=response.status_code,
                body=_plain(response.data),
                headers={name: response[name] for name in STORED_HEADERS if response.has_header(name)},
            )
    except _NotStored as not_stored:
        _release(record)
        return not_stored.response
    except KeyInUse as exc:
        return _in_use(exc)
    except BaseException:
        _release(record)
        raise
    return response


class _NotStored(Exception):
    """A 5xx: roll the work back and forget the key, so that the client's retry does the work."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _attempt(view: APIView, work: Callable[[], Response]) -> Response:
    """The view's response, with its exceptions turned into responses as DRF would, so a 4xx can be stored."""
    try:
        with transaction.atomic():  # a savepoint: a failed attempt leaves nothing behind
            return work()
    except Exception as exc:
        return view.handle_exception(exc)  # re-raises what has no response (a bug): that is a 500


def _release(record: IdempotencyKey) -> None:
    # With the database down this fails too; the key is then taken over after STALE_AFTER.
    with contextlib.suppress(DatabaseError):
        idempotency_release(record=record)


def _plain(data: Any) -> Any:
    """The body as plain JSON values, exactly as it was rendered."""
    return None if data is None else json.loads(JSONRenderer().render(data))


def _replay(record: IdempotencyKey) -> Response:
    headers = {**record.response_headers, REPLAYED: "true"}
    return Response(record.response_body, status=record.response_status, headers=headers)


def _in_use(exc: KeyInUse) -> Response:
    return Response(
        {"detail": str(exc), "code": "idempotency_key_in_use"},
        status=status.HTTP_409_CONFLICT,
        headers={"Retry-After": "1"},
    )
