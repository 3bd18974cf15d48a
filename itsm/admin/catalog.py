"""Teams and services."""

from __future__ import annotations

from django.contrib import admin

from itsm.admin.base import AdminRolePermissions
from itsm.admin.versioned import VersionedAdmin
from itsm.models import Service, Team


@admin.register(Team)
class TeamAdmin(VersionedAdmin, AdminRolePermissions, admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]


@admin.register(Service)
class ServiceAdmin(VersionedAdmin, AdminRolePermissions, admin.ModelAdmin):
    list_display = ["name", "slug", "team"]
    list_filter = ["team"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
