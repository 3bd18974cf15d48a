"""Filter backends shared by the list endpoints."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import BooleanField, Case, IntegerField, Q, QuerySet, When
from django.db.models.expressions import RawSQL
from rest_framework.filters import BaseFilterBackend, OrderingFilter
from rest_framework.request import Request

# Must match the expression of the GIN index created in migration 0002, or PostgreSQL will not use it.
TICKET_SEARCH_DOCUMENT = "to_tsvector('english'::regconfig, coalesce(title, '') || ' ' || coalesce(description, ''))"


class TicketSearchFilter(BaseFilterBackend):
    """`?search=`: PostgreSQL full-text search (web-search syntax) over title and description; a plain
    substring match on SQLite."""

    param = "search"

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        terms = request.query_params.get(self.param, "").strip()[:200]
        if not terms:
            return queryset
        if connection.vendor == "postgresql":
            matches = RawSQL(  # noqa: S611 (the terms are a bound parameter)
                f"{TICKET_SEARCH_DOCUMENT} @@ websearch_to_tsquery('english'::regconfig, %s)",
                (terms,),
                output_field=BooleanField(),
            )
            return queryset.filter(matches)
        return queryset.filter(Q(title__icontains=terms) | Q(description__icontains=terms))

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.param,
                "required": False,
                "in": "query",
                "description": "Full-text search over title and description (quoted phrases, OR, -word).",
                "schema": {"type": "string", "maxLength": 200},
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
