"""/api/v1/maintenance-windows/: schedule, edit and move maintenance windows; everyone signed in reads them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from itsm.api.events import EventSerializer
from itsm.api.filters import StableOrderingFilter, UtcDateTimeFilter
from itsm.api.permissions import IsAgent, IsAgentOrReadOnly
from itsm.api.public_view import PublicViewFilterSet, PublicViewMixin
from itsm.api.schema import TransitionConflict, paginated
from itsm.api.strict import (
    BooleanFilter,
    FilterBackend,
    IdField,
    IdFilter,
    SearchFilter,
    StrictModelSerializer,
    StrictSerializer,
)
from itsm.api.versioned import IF_MATCH, expected_version, with_etag
from itsm.models import Incident, MaintenanceWindow, Service
from itsm.models.maintenance import PROGRESS_FIELDS, PUBLIC_FIELDS, RECORDED_FIELDS
from itsm.queries.maintenance import window_events
from itsm.queries.status import public_windows
from itsm.queries.users import assignable_users
from itsm.replica import reads_from_replica
from itsm.services import maintenance as maintenance_services
from itsm.services.maintenance_lifecycle import maintenance_transition


class MaintenanceWindowFilter(PublicViewFilterSet):
    public_fields = PUBLIC_FIELDS
    public = BooleanFilter(help_text="Shown on the status page and to requesters (agents and admins only).")
    status = django_filters.MultipleChoiceFilter(choices=MaintenanceWindow.Status.choices)
    service = IdFilter(field_name="services__id")
    series = IdFilter(field_name="series_id")
    starts_after = UtcDateTimeFilter(field_name="starts_at", lookup_expr="gte")
    starts_before = UtcDateTimeFilter(field_name="starts_at", lookup_expr="lt")

    class Meta:
        model = MaintenanceWindow
        fields: list[str] = []


# What `checks` takes (itsm.services.maintenance.maintenance_validate), so clients and schemathesis know it.
CHECKS_SCHEMA = {
    "type": "array",
    "description": "What must hold after the maintenance (docs/maintenance-windows.md).",
    "items": {
        "oneOf": [
            {
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": {"type": "string", "enum": ["api_health", "no_firing_alerts"]}},
            },
            {
                "type": "object",
                "required": ["kind", "expr"],
                "properties": {
                    "kind": {"type": "string", "enum": ["promql"]},
                    # Not blank, and without NUL (which PostgreSQL's jsonb cannot store).
                    "expr": {
                        "type": "string",
                        "pattern": r"^[^\x00]*[^\s\x00][^\x00]*$",
                        "description": "A PromQL expression.",
                    },
                },
            },
        ]
    },
}


@extend_schema_field(CHECKS_SCHEMA)
class ChecksField(serializers.JSONField):
    """The list of checks (a JSON array; null is not a list)."""


class MaintenanceWindowSerializer(StrictModelSerializer):
    services = IdField(queryset=Service.objects.all(), many=True, required=False)
    notify_users = IdField(queryset=get_user_model().objects.filter(is_active=True), many=True, required=False)
    owner = IdField(queryset=assignable_users(), required=False, allow_null=True)
    notify_before_minutes = serializers.IntegerField(
        min_value=0, max_value=60 * 24 * 30, required=False, default=60, help_text="Announce this long before."
    )
    verify_for_minutes = serializers.IntegerField(
        min_value=0,
        max_value=60 * 24,
        required=False,
        allow_null=True,
        default=None,
        help_text="How long the checks keep running after the maintenance, and must pass on every run "
        "(0: once). Default: ITSM_MAINTENANCE_VERIFY_MINUTES.",
    )
    checks = ChecksField(required=False)
    incidents: serializers.PrimaryKeyRelatedField[Incident] = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True
    )

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id",
            "title",
            "description",
            "public",
            "public_title",
            "services",
            "starts_at",
            "ends_at",
            "recurrence",
            "series",
            "notify_users",
            "notify_before_minutes",
            "backup_required",
            "silence_alerts",
            "checks",
            "verify_for_minutes",
            "status",
            "owner",
            *PROGRESS_FIELDS,
            "incidents",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", *RECORDED_FIELDS]
        extra_kwargs = {
            "description": {"max_length": 20000},
            "title": {"allow_blank": False},
            "public": {
                "help_text": "Shown on the status page and to requesters, under its public title (default: private). "
                "It and the public title can be changed in any status."
            },
            "public_title": {
                "help_text": "The title anyone may read, required when public: the title is never shown to them."
            },
            # What maintenance_validate refuses, which a date-time in the schema cannot say.
            "starts_at": {
                "help_text": "When the maintenance starts: not in the past when the window is scheduled or its start "
                "is moved (a minute's grace)."
            },
            "ends_at": {"help_text": "When the maintenance ends: after starts_at."},
        }

    def to_representation(self, instance: MaintenanceWindow) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["notify_before_minutes"] = int(instance.notify_before.total_seconds() // 60)
        data["verify_for_minutes"] = int(instance.verify_for.total_seconds() // 60)
        return data

    def to_service_arguments(self) -> dict[str, Any]:
        values = dict(self.validated_data)
        minutes = values.pop("notify_before_minutes", None)
        if minutes is not None and (self.instance is None or "notify_before_minutes" in self.initial_data):
            values["notify_before"] = timedelta(minutes=minutes)
        # Not given (or null): the configured default on creation, unchanged on an edit.
        verify_minutes = values.pop("verify_for_minutes", None)
        if verify_minutes is not None:
            values["verify_for"] = timedelta(minutes=verify_minutes)
        return values


class PublicMaintenanceWindowSerializer(serializers.ModelSerializer):
    """A window as requesters read it: its public view (itsm.models.maintenance.PUBLIC_FIELDS), as on the status
    page."""

    services: serializers.PrimaryKeyRelatedField[Service] = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True
    )

    class Meta:
        model = MaintenanceWindow
        fields = list(PUBLIC_FIELDS)
        read_only_fields = fields


class MaintenanceTransitionSerializer(StrictSerializer):
    to = serializers.ChoiceField(choices=MaintenanceWindow.Status.choices)


@extend_schema_view(
    list=extend_schema(summary="List maintenance windows"),
    create=extend_schema(summary="Schedule a maintenance window (agents and admins)"),
    retrieve=extend_schema(summary="One maintenance window (with its ETag)"),
    update=extend_schema(summary="Replace a window that has not started", parameters=[IF_MATCH]),
    partial_update=extend_schema(summary="Edit a window that has not started", parameters=[IF_MATCH]),
    destroy=extend_schema(summary="Delete a maintenance window (admins only)"),
)
class MaintenanceWindowViewSet(PublicViewMixin, viewsets.ModelViewSet):
    """Requesters read public windows only, as the status page shows them (itsm.api.public_view)."""

    queryset = MaintenanceWindow.objects.none()
    serializer_class = MaintenanceWindowSerializer
    public_serializer_class = PublicMaintenanceWindowSerializer
    permission_classes = [IsAgentOrReadOnly]
    filter_backends = [FilterBackend, SearchFilter, StableOrderingFilter]
    filterset_class = MaintenanceWindowFilter
    staff_search_fields = ("title", "description", "public_title")
    staff_ordering_fields = ("starts_at", "ends_at", "id", "updated_at")
    ordering = ["starts_at"]

    def staff_queryset(self) -> QuerySet[MaintenanceWindow]:
        return MaintenanceWindow.objects.prefetch_related("services", "notify_users", "incidents")

    def public_queryset(self) -> QuerySet[MaintenanceWindow]:
        return public_windows().prefetch_related("services")

    def _fresh(self, window_id: int) -> Response:
        window = self.get_queryset().get(pk=window_id)
        return with_etag(Response(self.get_serializer(window).data), window)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        window = self.get_object()
        response = Response(self.get_serializer(window).data)
        return response if self.public_view() else with_etag(response, window)

    @reads_from_replica
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = MaintenanceWindowSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        window = maintenance_services.maintenance_create(actor=request.user, **body.to_service_arguments())
        response = self._fresh(window.pk)
        response.status_code = status.HTTP_201_CREATED
        return response

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        window = self.get_object()
        version = expected_version(request, MaintenanceWindow, window.pk)
        body = MaintenanceWindowSerializer(
            window, data=request.data, partial=kwargs.get("partial", False), context=self.get_serializer_context()
        )
        body.is_valid(raise_exception=True)
        maintenance_services.maintenance_update(
            window_id=window.pk, actor=request.user, changes=body.to_service_arguments(), expected_version=version
        )
        return self._fresh(window.pk)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        maintenance_services.maintenance_delete(window_id=self.get_object().pk, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[IF_MATCH],
        request=MaintenanceTransitionSerializer,
        responses={
            200: MaintenanceWindowSerializer,
            409: OpenApiResponse(TransitionConflict, description="Not an allowed next state."),
        },
        summary="Start now, complete early, cancel, retry a blocked window or re-run failed checks",
    )
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str | None = None) -> Response:
        window = self.get_object()
        version = expected_version(request, MaintenanceWindow, window.pk)
        body = MaintenanceTransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        maintenance_transition(
            window_id=window.pk, actor=request.user, to=body.validated_data["to"], expected_version=version
        )
        return self._fresh(window.pk)

    @extend_schema(
        responses=paginated(EventSerializer),
        summary="The window's history: its creation, edits and every status change, with who made it (agents and "
        "admins)",
        filters=False,
    )
    @action(detail=True, methods=["get"], filter_backends=[], permission_classes=[IsAgent])
    def events(self, request: Request, pk: str | None = None) -> Response:
        page = self.paginate_queryset(window_events(self.get_object()))
        return self.get_paginated_response(EventSerializer(page, many=True).data)
