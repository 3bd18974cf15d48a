"""/api/v1/oncall/: who is on call now (or at `?at=`) and next, for each team. Every signed-in user reads it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from itsm.api.pagination import Pagination
from itsm.api.strict import MAX_ID
from itsm.models import Team
from itsm.services.oncall import OnCall, oncall_now_all

# In a query string an unencoded "+" arrives as a space: "2026-03-29T09:00:00 02:00" meant "+02:00".
_SPACE_FOR_PLUS = re.compile(r" (\d\d(?::?\d\d)?)$")


class OnCallQuery(serializers.Serializer):
    at = serializers.DateTimeField(required=False)
    team = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data.get("at"), str):
            data = data.copy()
            data["at"] = _SPACE_FOR_PLUS.sub(r"+\1", data["at"].strip())
        return super().to_internal_value(data)


class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    username = serializers.CharField(source="get_username")
    name = serializers.CharField(source="get_full_name")


class TeamRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    slug = serializers.CharField()


class RotationRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    time_zone = serializers.CharField()
    shift_length_hours = serializers.IntegerField()


class TeamOnCallSerializer(serializers.Serializer):
    """One team: who is on call, until when, and who takes over then (null when the team has no rotation)."""

    team = TeamRefSerializer()
    rotation = RotationRefSerializer(allow_null=True)
    on_call = PersonSerializer(allow_null=True)
    next_on_call = PersonSerializer(allow_null=True)
    shift_start = serializers.DateTimeField(allow_null=True)
    shift_end = serializers.DateTimeField(allow_null=True)
    overridden = serializers.BooleanField()


def _row(team: Team, oncall: OnCall | None) -> dict[str, Any]:
    return {
        "team": team,
        "rotation": oncall.rotation if oncall else None,
        "on_call": oncall.user if oncall else None,
        "next_on_call": oncall.next_user if oncall else None,
        "shift_start": oncall.shift_start if oncall else None,
        "shift_end": oncall.shift_end if oncall else None,
        "overridden": bool(oncall and oncall.overridden),
    }


class OnCallPagination(Pagination):
    """A page of teams, with the moment it describes."""

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        page = super().get_paginated_response_schema(schema)
        at = {"type": "string", "format": "date-time", "description": "The moment asked about (now if no `?at=`)."}
        return {**page, "required": ["at", *page["required"]], "properties": {"at": at, **page["properties"]}}


class OnCallViewSet(viewsets.GenericViewSet):
    """Who is on call for each team, now or at `?at=`."""

    queryset = Team.objects.none()
    serializer_class = TeamOnCallSerializer
    filter_backends: list[type] = []
    pagination_class = OnCallPagination

    def get_queryset(self) -> QuerySet[Team]:
        return Team.objects.order_by("name", "id")

    @extend_schema(
        summary="Who is on call for each team, and who is next",
        parameters=[
            OpenApiParameter(
                "at",
                OpenApiTypes.DATETIME,
                description="The moment to ask about, ISO 8601 (e.g. 2026-03-29T09:00:00Z); now if omitted.",
            ),
            OpenApiParameter(
                "team", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, description="Only this team (its id)."
            ),
        ],
        responses=TeamOnCallSerializer,
    )
    def list(self, request: Request) -> Response:
        query = OnCallQuery(data=request.query_params)
        if not query.is_valid():
            raise ValidationError(query.errors)
        at: datetime = query.validated_data.get("at") or timezone.now()
        teams = self.get_queryset()
        if "team" in query.validated_data:
            teams = teams.filter(pk=query.validated_data["team"])
        page = self.paginate_queryset(teams) or []
        rows = [_row(team, oncall) for team, oncall in oncall_now_all(at, teams=page)]
        response = self.get_paginated_response(TeamOnCallSerializer(rows, many=True).data)
        response.data = {"at": serializers.DateTimeField().to_representation(at), **response.data}
        return response
