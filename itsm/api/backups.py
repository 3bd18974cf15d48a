"""/api/v1/backups/: agents and admins read the catalogue; admins queue a backup or a verification (202)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from itsm.api.filters import StableOrderingFilter
from itsm.api.idempotency import IDEMPOTENCY_KEY, IDEMPOTENCY_RESPONSES, idempotent
from itsm.api.permissions import IsAgentReadsAdminWrites
from itsm.api.strict import BooleanFilter, FilterBackend
from itsm.models import Backup
from itsm.models.backups import RECORDED_FIELDS
from itsm.services import backups as backup_services


class BackupFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=Backup.Kind.choices)
    tier = django_filters.MultipleChoiceFilter(choices=Backup.Tier.choices)
    status = django_filters.MultipleChoiceFilter(choices=Backup.Status.choices)
    trigger = django_filters.MultipleChoiceFilter(choices=Backup.Trigger.choices)
    verified = BooleanFilter(field_name="verified_ok")

    class Meta:
        model = Backup
        fields: list[str] = []


class BackupSerializer(serializers.ModelSerializer):
    class Meta:
        model = Backup
        fields = ["id", *RECORDED_FIELDS]
        read_only_fields = fields


class BackupRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Backup.Kind.choices)
    tier = serializers.ChoiceField(choices=Backup.Tier.choices, default=Backup.Tier.DAILY)


@extend_schema_view(
    list=extend_schema(summary="List backups (agents and admins)"),
    retrieve=extend_schema(summary="One backup with its manifest and verification"),
    create=extend_schema(
        summary="Queue a backup now (admins)",
        request=BackupRequestSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            202: OpenApiResponse(BackupSerializer, description="The queued (pending) backup."),
            **IDEMPOTENCY_RESPONSES,
        },
    ),
)
class BackupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    queryset = Backup.objects.none()
    serializer_class = BackupSerializer
    permission_classes = [IsAgentReadsAdminWrites]
    filter_backends = [FilterBackend, StableOrderingFilter]
    filterset_class = BackupFilter
    ordering_fields = ["created_at", "started_at", "finished_at", "size_bytes", "id"]
    ordering = ["-created_at"]

    def get_queryset(self) -> QuerySet[Backup]:
        return Backup.objects.all()

    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = BackupRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        backup = backup_services.backup_create(
            kind=body.validated_data["kind"],
            tier=body.validated_data["tier"],
            trigger=Backup.Trigger.MANUAL,
            requested_by=request.user,
        )
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(BackupSerializer, description="The verification is queued."),
            400: OpenApiResponse(
                description="The copy it would read cannot be: no local copy and S3 is not configured (or its S3 "
                "copy is gone). `source` says which; nothing is queued and the backup is left as it was."
            ),
            409: OpenApiResponse(description="The backup has no finished archive to verify."),
        },
        summary="Queue a verification: full read and restore into a scratch database (admins)",
    )
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str | None = None) -> Response:
        backup = self.get_object()
        # The worker reads the local copy, or the S3 copy when there is no local one; refuse now what it could not
        # read, rather than record a good backup as failed. No copy at all is the service's 409.
        source = "local" if backup.has_local_copy else "s3"
        problem = backup.unreadable_copy(source, s3_configured=bool(settings.BACKUP_S3_BUCKET))
        if problem and backup.has_s3_copy:
            raise serializers.ValidationError(
                {"source": [f"Backup #{backup.pk} has no local copy and would be read from S3, but {problem}."]}
            )
        backup = backup_services.backup_verify_queue(backup_id=backup.pk)
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)
