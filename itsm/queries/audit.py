"""Reads of the audit trail (itsm/audit.py): its rows with their actor and type in one query, and the names its
filters take for the recorded models."""

from __future__ import annotations

from functools import cache
from typing import Any

from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, QuerySet

from itsm.audit import RECORDED


@cache
def audited_models() -> dict[str, type[Model]]:
    """The recorded models by their name in the API (`ticket`, `incident`, `user`...), the user included."""
    return {model._meta.model_name or "": model for model in [*RECORDED, get_user_model()]}


def audit_entries() -> QuerySet[Any]:
    """Every row, newest first, with what a page shows of its actor and type (no query per row)."""
    return LogEntry.objects.select_related("content_type", "actor").order_by("-timestamp", "-id")


def audit_entries_of(queryset: QuerySet[Any], *, object_type: str) -> QuerySet[Any]:
    """The rows about one recorded model, a deleted object's included (they outlive it)."""
    content_type = ContentType.objects.get_for_model(audited_models()[object_type], for_concrete_model=False)
    return queryset.filter(content_type=content_type)
