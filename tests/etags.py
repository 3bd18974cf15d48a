"""The If-Match header a client that has just read an object sends back (docs/api.md#concurrency)."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from itsm.models.versioned import etag_of


def if_match(row: Model | type[Model], pk: Any = None) -> dict[str, Any]:
    """`{"HTTP_IF_MATCH": '"<pk>-<version>"'}` for a row (or a model and a primary key), at the version the database
    holds now: spread it into a test client's call."""
    model = row if isinstance(row, type) else type(row)
    key = pk if pk is not None else row.pk
    version = model._default_manager.filter(pk=key).values_list("version", flat=True).get()
    return {"HTTP_IF_MATCH": etag_of(key, version)}
