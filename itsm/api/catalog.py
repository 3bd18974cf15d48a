"""/api/v1/services/ and /api/v1/teams/: what tickets and incidents are about, and who owns it."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from rest_framework import viewsets

from itsm.api.filters import StableOrderingFilter
from itsm.api.permissions import IsAdminOrReadOnly
from itsm.api.strict import CharFilter, FilterBackend, IdField, IdFilter, SearchFilter, StrictModelSerializer
from itsm.api.versioned import VersionedMixin
from itsm.models import Service, Team


class TeamSerializer(StrictModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name", "slug", "members"]


class ServiceSerializer(StrictModelSerializer):
    team = IdField(queryset=Team.objects.all(), required=False, allow_null=True)

    class Meta:
        model = Service
        fields = ["id", "name", "slug", "description", "team"]
        extra_kwargs = {"description": {"max_length": 5000}}


class ServiceFilter(django_filters.FilterSet):
    team = IdFilter(field_name="team_id")
    slug = CharFilter(max_length=100)

    class Meta:
        model = Service
        fields: list[str] = []


class ServiceViewSet(VersionedMixin, viewsets.ModelViewSet):
    """Every signed-in user reads the service catalogue; admins edit it (If-Match, itsm.api.versioned)."""

    serializer_class = ServiceSerializer
    permission_classes = [IsAdminOrReadOnly]
    filter_backends = [FilterBackend, SearchFilter, StableOrderingFilter]
    filterset_class = ServiceFilter
    search_fields = ["name", "slug", "description"]
    ordering_fields = ["name", "id"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[Service]:
        return Service.objects.all()


class TeamViewSet(VersionedMixin, viewsets.ModelViewSet):
    """Every signed-in user reads teams; admins edit them (If-Match, itsm.api.versioned)."""

    serializer_class = TeamSerializer
    permission_classes = [IsAdminOrReadOnly]
    filter_backends = [SearchFilter, StableOrderingFilter]
    search_fields = ["name", "slug"]
    ordering_fields = ["name", "id"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[Team]:
        return Team.objects.prefetch_related("members")
