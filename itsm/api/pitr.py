"""/api/v1/backups/drills/: the point-in-time recovery drills with their RPO and RTO (agents and admins read)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets

from itsm.api.filters import StableOrderingFilter
from itsm.api.permissions import IsAgentReadsAdminWrites
from itsm.api.strict import FilterBackend
from itsm.models import RecoveryDrill
from itsm.models.pitr import RECORDED_FIELDS


class RecoveryDrillFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=RecoveryDrill.Status.choices)
    trigger = django_filters.MultipleChoiceFilter(choices=RecoveryDrill.Trigger.choices)

    class Meta:
        model = RecoveryDrill
        fields: list[str] = []


class RecoveryDrillSerializer(serializers.ModelSerializer):
    class Meta:
        model = RecoveryDrill
        fields = ["id", *RECORDED_FIELDS]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="List point-in-time recovery drills with their RPO and RTO (agents and admins)"),
    retrieve=extend_schema(summary="One point-in-time recovery drill"),
)
class RecoveryDrillViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = RecoveryDrill.objects.none()
    serializer_class = RecoveryDrillSerializer
    permission_classes = [IsAgentReadsAdminWrites]
    filter_backends = [FilterBackend, StableOrderingFilter]
    filterset_class = RecoveryDrillFilter
    ordering_fields = ["started_at", "finished_at", "rpo_seconds", "rto_seconds", "id"]
    ordering = ["-started_at"]

    def get_queryset(self) -> QuerySet[RecoveryDrill]:
        return RecoveryDrill.objects.all()
