"""GET /api/v1/reports/incidents/ (MTTA, MTTR and response-target compliance) and GET /api/v1/reports/tickets/ (SLA
compliance, median times and satisfaction), each for a period."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from itsm.api.permissions import IsAgent
from itsm.queries.reports import incident_report, ticket_report
from itsm.replica import reads_from_replica


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


def _period(request: Request) -> tuple[datetime, datetime]:
    """`?from=&to=` as ISO 8601 times; a malformed or backwards period is a 400 naming the parameter."""
    period = PeriodSerializer(
        data={
            k: v for k, v in (("start", request.query_params.get("from")), ("end", request.query_params.get("to"))) if v
        }
    )
    if not period.is_valid():
        errors = {{"start": "from", "end": "to"}.get(key, key): value for key, value in period.errors.items()}
        raise serializers.ValidationError(errors)
    return period.validated_data["start"], period.validated_data["end"]


PERIOD_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="ISO 8601 time; default 30 days before 'to'."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="ISO 8601 time; default now."),
]

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
        parameters=PERIOD_PARAMETERS,
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
    @reads_from_replica
    def get(self, request: Request) -> Response:
        start, end = _period(request)
        return Response(incident_report(start=start, end=end))


_TICKET_ROW: dict[str, serializers.Field] = {
    "created": serializers.IntegerField(help_text="Tickets created in the period."),
    "resolved": serializers.IntegerField(help_text="Of these, resolved or closed now."),
    "first_response_met": serializers.IntegerField(),
    "first_response_breached": serializers.IntegerField(),
    "first_response_compliance": serializers.FloatField(allow_null=True, help_text="met / (met + breached)."),
    "resolution_met": serializers.IntegerField(),
    "resolution_breached": serializers.IntegerField(),
    "resolution_compliance": serializers.FloatField(allow_null=True, help_text="met / (met + breached)."),
    "median_first_response_seconds": serializers.IntegerField(
        allow_null=True, help_text="Creation to the first public agent reply, wall-clock."
    ),
    "median_resolution_seconds": serializers.IntegerField(
        allow_null=True, help_text="Creation to resolution, wall-clock."
    ),
    "ratings": serializers.IntegerField(help_text="Satisfaction ratings given."),
    "average_score": serializers.FloatField(allow_null=True, help_text="Their average score, 1 to 5."),
}


class TicketReportView(APIView):
    """Tickets created in the period: in total, per service, per priority and per SLA policy. Agents and admins."""

    permission_classes = [IsAgent]

    @extend_schema(
        parameters=PERIOD_PARAMETERS,
        responses=inline_serializer(
            "TicketReport",
            {
                "from": serializers.DateTimeField(),
                "to": serializers.DateTimeField(),
                "total": inline_serializer("TicketReportRow", _TICKET_ROW),
                "by_service": serializers.ListField(
                    child=serializers.DictField(), help_text="Rows with service_id and service (its slug)."
                ),
                "by_priority": serializers.DictField(help_text="A row per priority, null when it had no ticket."),
                "by_sla_policy": serializers.ListField(
                    child=serializers.DictField(), help_text="Rows with sla_policy_id and sla_policy (its name)."
                ),
            },
        ),
        tags=["reports"],
        summary="Ticket report: SLA compliance, median times and satisfaction",
    )
    @reads_from_replica
    def get(self, request: Request) -> Response:
        start, end = _period(request)
        return Response(ticket_report(start=start, end=end))
