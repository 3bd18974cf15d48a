"""GET /api/v1/reports/incidents/: MTTA, MTTR and response-target compliance for a period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from itsm.queries.reports import incident_report


class PeriodSerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        end = attrs.get("end") or timezone.now()
        start = attrs.get("start") or end - timedelta(days=30)
        if start >= end:
            raise serializers.ValidationError({"from": ["Must be before 'to'."]})
        if end - start > timedelta(days=3660):
            raise serializers.ValidationError({"from": ["The period may span at most ten years."]})
        return {"start": start, "end": end}


_ROW: dict[str, serializers.Field] = {
    "count": serializers.IntegerField(),
    "open": serializers.IntegerField(),
    "mtta_seconds": serializers.IntegerField(allow_null=True),
    "mttr_seconds": serializers.IntegerField(allow_null=True),
    "response_target_met": serializers.IntegerField(),
    "response_target_missed": serializers.IntegerField(),
    "response_compliance": serializers.FloatField(allow_null=True),
}


class IncidentReportView(APIView):
    """Incidents detected in the period: totals, per severity, per service. Every signed-in user may read it."""

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="ISO 8601 time; default 30 days before 'to'."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="ISO 8601 time; default now."),
        ],
        responses=inline_serializer(
            "IncidentReport",
            {
                "from": serializers.DateTimeField(),
                "to": serializers.DateTimeField(),
                "total": inline_serializer("IncidentReportRow", _ROW),
                "by_severity": serializers.DictField(),
                "by_service": serializers.ListField(child=serializers.DictField()),
            },
        ),
        tags=["reports"],
        summary="Incident report: MTTA, MTTR and compliance",
    )
    def get(self, request: Request) -> Response:
        period = PeriodSerializer(
            data={
                k: v
                for k, v in (("start", request.query_params.get("from")), ("end", request.query_params.get("to")))
                if v
            }
        )
        if not period.is_valid():
            errors = {{"start": "from", "end": "to"}.get(key, key): value for key, value in period.errors.items()}
            raise serializers.ValidationError(errors)
        return Response(incident_report(start=period.validated_data["start"], end=period.validated_data["end"]))
