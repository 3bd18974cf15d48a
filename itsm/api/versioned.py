"""ETag and If-Match for every versioned resource (docs/api.md#concurrency): the If-Match parsing, the schema's
header parameter, and a viewset mixin for the resources whose edits have no service of their own.

A read answers with the object's ETag (`"<id>-<version>"`); a write to an existing object must send it back in
If-Match: missing is 428, another version (or another object's, or garbage) is 412 with the current ETag, and
nothing is written. The service compares under the row lock (itsm.services.versioned)."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Model
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from itsm.api.errors import PreconditionRequired
from itsm.exceptions import StaleVersion
from itsm.models.versioned import Versioned, etag_of
from itsm.services.versioned import versioned_write

_ETAG = re.compile(r'^(?:W/)?"(\d+)-(\d+)"$')

IF_MATCH = OpenApiParameter(
    "If-Match",
    {"type": "string", "minLength": 1},
    location=OpenApiParameter.HEADER,
    required=True,
    description='The ETag of the object as last read, e.g. "12-3". 412 when stale, 428 when missing.',
)

# A sub-resource that the first write creates (an incident's post-mortem): If-Match once it exists.
IF_MATCH_ONCE_WRITTEN = OpenApiParameter(
    "If-Match",
    {"type": "string", "minLength": 1},
    location=OpenApiParameter.HEADER,
    required=False,
    description='The ETag of the object as last read, e.g. "12-3": required once it exists (428 when missing), '
    "412 when stale.",
)


def expected_version(request: Request, model: type[Model], pk: int) -> int:
    """The version the client read, from If-Match. Missing is 428; another object's or garbage is 412 with the
    current ETag (404 when there is no such object)."""
    header = request.headers.get("If-Match", "").strip()
    if not header:
        raise PreconditionRequired()
    match = _ETAG.match(header)
    if match is None or int(match.group(1)) != pk:
        current = model._default_manager.filter(pk=pk).values_list("version", flat=True).first()
        if current is None:
            raise Http404
        raise StaleVersion(etag_of(pk, current), noun=str(model._meta.verbose_name))
    return int(match.group(2))


def with_etag(response: Response, row: Versioned) -> Response:
    response["ETag"] = row.etag
    return response


class VersionedMixin:
    """For a ModelViewSet of a Versioned model saved by its serializer: the ETag on reads and edits, and edits
    checked against If-Match under the row lock. The view declares IF_MATCH on update and partial_update."""

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        row = self.get_object()  # type: ignore[attr-defined]
        return with_etag(Response(self.get_serializer(row).data), row)  # type: ignore[attr-defined]

    @extend_schema(parameters=[IF_MATCH])
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        row = self.get_object()  # type: ignore[attr-defined]
        version = expected_version(request, type(row), row.pk)
        serializer = self.get_serializer(row, data=request.data, partial=kwargs.get("partial", False))  # type: ignore[attr-defined]
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        saved = versioned_write(
            model=type(row), pk=row.pk, expected_version=version, write=lambda locked: serializer.update(locked, data)
        )
        serializer.instance = saved
        return with_etag(Response(serializer.data), saved)

    @extend_schema(parameters=[IF_MATCH])
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, partial=True, **kwargs)
