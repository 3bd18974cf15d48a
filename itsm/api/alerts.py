"""POST /api/v1/alerts/alertmanager/ (Alertmanager's webhook, version 4) and GET /api/v1/alerts/."""

from __future__ import annotations

import hmac
import re
from datetime import datetime
from typing import Any

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from itsm.api.filters import StableOrderingFilter, UtcDateTimeFilter
from itsm.api.permissions import IsAgent
from itsm.api.strict import CharFilter, FilterBackend, IdFilter, StrictCharField, StrictSerializer
from itsm.models import Alert
from itsm.services.alerts import alerts_ingest

MAX_ALERTS_PER_DELIVERY = 1000


# What PostgreSQL's jsonb cannot hold in a string: NUL, and a lone surrogate ("\ud800" is not a character).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class LabelMap(serializers.DictField):
    """Label (or annotation) names and values. A value refuses NUL, as its schema says; OpenAPI 3.0 cannot say so of
    a name (propertyNames is 3.1), so what jsonb cannot hold in a name becomes U+FFFD rather than a 400, which would
    lose every alert of the delivery (Alertmanager does not retry a 4xx)."""

    child = StrictCharField(allow_blank=True, max_length=10000)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if not isinstance(data, dict):
            return super().to_internal_value(data)
        # Names first, so that a message about a value names it in text that can be sent (a lone surrogate in the
        # 400's JSON was a 500).
        labels = {UNSTORABLE.sub("\ufffd", str(name)): value for name, value in data.items()}
        limit = self.child.max_length or 0
        if all(
            type(value) is str and len(value) <= limit and not UNSTORABLE.search(value) for value in labels.values()
        ):
            # What the child field would return for each value, without running it: a delivery carries about 70
            # labels and annotations, and their field-by-field validation was a tenth of the intake's time.
            return labels
        return super().to_internal_value(labels)  # the child's per-value messages


class AlertmanagerDateTime(serializers.DateTimeField):
    """Alertmanager sends 0001-01-01T00:00:00Z for "no end yet": that is no time at all."""

    def to_internal_value(self, value: Any) -> datetime:
        parsed = super().to_internal_value(value)
        return None if parsed.year <= 1 else parsed  # type: ignore[return-value]


class AlertmanagerAlert(StrictSerializer):
    status = serializers.ChoiceField(choices=Alert.Status.choices)
    labels = LabelMap()
    annotations = LabelMap(required=False, default=dict)
    startsAt = AlertmanagerDateTime(required=False, allow_null=True, default=None)
    endsAt = AlertmanagerDateTime(required=False, allow_null=True, default=None)
    generatorURL = StrictCharField(required=False, allow_blank=True, max_length=2000, default="")
    fingerprint = StrictCharField(max_length=128)


class AlertmanagerPayload(StrictSerializer):
    version = serializers.ChoiceField(choices=["4"])
    groupKey = StrictCharField(required=False, allow_blank=True, max_length=500, default="")
    status = serializers.ChoiceField(choices=Alert.Status.choices, required=False)
    receiver = StrictCharField(required=False, allow_blank=True, max_length=500)
    alerts = serializers.ListField(
        child=AlertmanagerAlert(), allow_empty=False, min_length=1, max_length=MAX_ALERTS_PER_DELIVERY
    )


class IntakeResultSerializer(serializers.Serializer):
    incidents = serializers.ListField(child=serializers.IntegerField())
    alerts_created = serializers.IntegerField()
    alerts_updated = serializers.IntegerField()
    incidents_opened = serializers.IntegerField()
    incidents_resolved = serializers.IntegerField()
    alerts_under_maintenance = serializers.IntegerField(help_text="Recorded without an incident or a page.")


class AlertmanagerIntakeView(APIView):
    """Alertmanager's webhook receiver. Authenticated by `Authorization: Bearer <ITSM_ALERTMANAGER_TOKEN>`."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        request=AlertmanagerPayload,
        responses={200: IntakeResultSerializer, 401: OpenApiResponse(description="Missing or wrong bearer token.")},
        tags=["alerts"],
        summary="Receive an Alertmanager webhook delivery",
    )
    def post(self, request: Request) -> Response:
        self._authenticate(request)
        payload = AlertmanagerPayload(data=request.data)
        payload.is_valid(raise_exception=True)
        result = alerts_ingest(payload=payload.validated_data)
        return Response(IntakeResultSerializer(result).data, status=status.HTTP_200_OK)

    def _authenticate(self, request: Request) -> None:
        expected = settings.ITSM_ALERTMANAGER_TOKEN
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if not expected:
            raise exceptions.AuthenticationFailed("The alert intake is disabled: set ITSM_ALERTMANAGER_TOKEN.")
        accepted = [expected, *settings.ITSM_ALERTMANAGER_TOKEN_FALLBACKS]
        # Every candidate is compared, so the time taken does not tell which one nearly matched.
        matches = [hmac.compare_digest(token.strip().encode(), candidate.encode()) for candidate in accepted]
        if scheme.lower() != "bearer" or not any(matches):
            raise exceptions.AuthenticationFailed("Missing or wrong bearer token.")

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="alertmanager"'


class AlertSerializer(serializers.ModelSerializer):
    # As Alertmanager sent it, often "" (the model's URLField would document a URI).
    generator_url = serializers.CharField(read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "fingerprint",
            "status",
            "alertname",
            "severity",
            "labels",
            "annotations",
            "starts_at",
            "ends_at",
            "generator_url",
            "service",
            "incident",
            "received_at",
            "last_received_at",
            "receive_count",
        ]
        read_only_fields = fields


class AlertFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Alert.Status.choices)
    alertname = CharFilter(max_length=200)
    fingerprint = CharFilter(max_length=128)
    service = IdFilter(field_name="service_id")
    incident = IdFilter(field_name="incident_id")
    received_after = UtcDateTimeFilter(field_name="last_received_at", lookup_expr="gte")

    class Meta:
        model = Alert
        fields: list[str] = []


class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Alerts received from Alertmanager, for agents and admins: their labels, annotations and generator URLs name
    instances and addresses (requesters see incidents as the status page shows them)."""

    queryset = Alert.objects.none()
    serializer_class = AlertSerializer
    permission_classes = [IsAgent]
    filter_backends = [FilterBackend, StableOrderingFilter]
    filterset_class = AlertFilter
    ordering_fields = ["last_received_at", "starts_at", "id"]
    ordering = ["-last_received_at"]

    def get_queryset(self) -> QuerySet[Alert]:
        return Alert.objects.all()
