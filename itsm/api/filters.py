"""Filter backends shared by the list endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.db.models import Case, IntegerField, QuerySet, When
from django_filters.fields import IsoDateTimeField
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend, OrderingFilter
from rest_framework.request import Request

from itsm.queries.tickets import tickets_matching

SEARCH_MAX_LENGTH = 200


class TicketSearchFilter(BaseFilterBackend):
    """`?search=`: PostgreSQL full-text search (web-search syntax) over title and description; a plain
    substring match on SQLite."""

    param = "search"

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        sent = request.query_params.get(self.param, "")
        if len(sent) > SEARCH_MAX_LENGTH:  # refused, not cut: a cut query would answer another question
            raise ValidationError({self.param: [f"Ensure this value has at most {SEARCH_MAX_LENGTH} characters."]})
        terms = sent.strip()
        if not terms:
            return queryset
        if "\x00" in terms:  # PostgreSQL cannot take NUL in a text value: a 400, not a 500
            raise ValidationError({self.param: ["Null characters are not allowed."]})
        return tickets_matching(queryset, terms)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.param,
                "required": False,
                "in": "query",
                "description": "Full-text search over title and description (quoted phrases, OR, -word).",
                "schema": {"type": "string", "maxLength": SEARCH_MAX_LENGTH, "pattern": "^[^\\x00]*$"},
            }
        ]


class StableOrderingFilter(OrderingFilter):
    """`?ordering=`, with the id as the last key so pages never repeat or skip rows that tie."""

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> list[str]:
        ordering = list(super().get_ordering(request, queryset, view) or [])
        if not any(key.lstrip("-") == "id" for key in ordering):
            ordering.append("-id")
        return ordering

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        """Fields named in the view's `ordering_expressions` sort by that expression (a rank, not the text)."""
        expressions = getattr(view, "ordering_expressions", {})
        keys = []
        for key in self.get_ordering(request, queryset, view):
            name = key.lstrip("-")
            if name in expressions:
                queryset = queryset.annotate(**{f"{name}_rank": expressions[name]})
                key = key.replace(name, f"{name}_rank")
            keys.append(key)
        return queryset.order_by(*keys)


def urgency_rank(field: str) -> Case:
    """critical 0, high 1, medium 2, low 3: ascending order puts the most urgent first."""
    levels = ("critical", "high", "medium", "low")
    return Case(*(When(**{field: level}, then=rank) for rank, level in enumerate(levels)), output_field=IntegerField())


class UtcDateTimeField(IsoDateTimeField):
    def clean(self, value: Any) -> datetime | None:
        parsed = super().clean(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("This time is out of range.", code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 time filter compared in UTC: Python accepts offsets up to ±23:59, PostgreSQL only ±15:59 (a
    500 on ?created_after=2020-01-01T00:00-17:31, found by schemathesis)."""

    field_class = UtcDateTimeField
