"""/api/v1/audit/: the audit trail (docs/security.md#audit-trail), admins only. Every recorded create, update and
delete, newest first, filtered by object (`object_type` and `object_id`), actor, source, action and period. A
deleted ticket's history stays readable here."""

from __future__ import annotations

from typing import Any

import django_filters
from auditlog.models import LogEntry
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets

from itsm.api.filters import UtcDateTimeFilter
from itsm.api.permissions import IsAdmin
from itsm.api.strict import FilterBackend, IdFilter
from itsm.audit import SOURCES
from itsm.queries.audit import audit_entries, audit_entries_of, audited_models

ACTIONS = {LogEntry.Action.CREATE: "create", LogEntry.Action.UPDATE: "update", LogEntry.Action.DELETE: "delete"}


class AuditEntryFilter(django_filters.FilterSet):
    object_type = django_filters.ChoiceFilter(
        choices=[(name, name) for name in sorted(audited_models())],
        method="of_type",
        help_text="The kind of object: ticket, incident, user...",
    )
    object_id = IdFilter(help_text="The object's id (with object_type).")
    actor = IdFilter(field_name="actor_id", help_text="The user who made the change.")
    source = django_filters.ChoiceFilter(field_name="additional_data__source", choices=[(s, s) for s in SOURCES])
    action = django_filters.ChoiceFilter(choices=[(name, name) for name in ACTIONS.values()], method="of_action")
    changed_after = UtcDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    changed_before = UtcDateTimeFilter(field_name="timestamp", lookup_expr="lt")

    class Meta:
        model = LogEntry
        fields: list[str] = []

    def of_type(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return audit_entries_of(queryset, object_type=value)

    def of_action(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(action={label: code for code, label in ACTIONS.items()}[value])


@extend_schema_field({"type": "string", "enum": list(ACTIONS.values())})
class ActionField(serializers.Field):
    def to_representation(self, value: int) -> str:
        return ACTIONS.get(value, "access")


class AuditEntrySerializer(serializers.ModelSerializer):
    at = serializers.DateTimeField(source="timestamp")
    action = ActionField()
    object_type = serializers.CharField(source="content_type.model")
    object_id = serializers.CharField(source="object_pk")
    object_repr = serializers.CharField(help_text="The object as it read when changed (kept after its deletion).")
    changes = serializers.JSONField(
        help_text='Each changed field with its value before and after: {"priority": ["medium", "high"]}. Hidden '
        'values read "(hidden)"; a many-to-many change is {"type": "m2m", "operation": "add", "objects": [...]}.'
    )
    actor = serializers.IntegerField(source="actor_id", allow_null=True)
    actor_username = serializers.CharField(source="actor.username", default=None, allow_null=True)
    actor_email = serializers.CharField(allow_null=True)
    source = serializers.SerializerMethodField()  # type: ignore[assignment]  # a field, not Field.source
    detail = serializers.SerializerMethodField(help_text="The request, the task or the command that made it.")
    remote_addr = serializers.IPAddressField(allow_null=True)
    request_id = serializers.CharField(source="cid", allow_null=True, help_text="The request id of the logs.")

    class Meta:
        model = LogEntry
        fields = [
            "id",
            "at",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "actor",
            "actor_username",
            "actor_email",
            "source",
            "detail",
            "remote_addr",
            "request_id",
        ]
        read_only_fields = fields

    def get_source(self, entry: LogEntry) -> str:
        return str((entry.additional_data or {}).get("source", ""))

    def get_detail(self, entry: LogEntry) -> str:
        data = entry.additional_data or {}
        return str(data.get("detail") or data.get("command") or "")


class AuditEntryViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = LogEntry.objects.none()  # the schema's model; requests use get_queryset()
    serializer_class = AuditEntrySerializer
    permission_classes = [IsAdmin]
    filter_backends = [FilterBackend]
    filterset_class = AuditEntryFilter

    def get_queryset(self) -> QuerySet[Any]:
        return audit_entries()

    @extend_schema(summary="The audit trail: every recorded change, newest first (admins)")
    def list(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().list(request, *args, **kwargs)
