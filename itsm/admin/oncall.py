"""On-call rotations with their ordered members and overrides. Agents see them and manage overrides (shift
swaps); admins edit rotations."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils import timezone

from itsm.admin.base import AdminWritePermissions, StaffRolePermissions
from itsm.admin.versioned import VersionedAdmin
from itsm.models import Override, Rotation, RotationMember
from itsm.roles import is_staff_role
from itsm.services.oncall import oncall_for_team

TIME_ZONES = [(name, name) for name in sorted(zoneinfo.available_timezones())]


class RotationForm(forms.ModelForm):
    time_zone = forms.ChoiceField(choices=TIME_ZONES, initial="UTC")

    class Meta:
        model = Rotation
        fields = ["team", "name", "shift_length_hours", "handoff_time", "time_zone", "start_date"]


class MembersFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        kept = [
            form
            for form in self.forms
            if getattr(form, "cleaned_data", None)
            and form.cleaned_data.get("user")
            and not form.cleaned_data.get("DELETE")
        ]
        if not kept:
            raise forms.ValidationError("A rotation needs at least one member: add someone to take the shifts.")


class RotationMemberInline(AdminWritePermissions, admin.TabularInline):
    model = RotationMember
    formset = MembersFormSet
    extra = 1
    fields = ("position", "user")
    ordering = ("position", "id")
    verbose_name = "member (the lowest position takes the first shift)"


class OverrideInline(AdminWritePermissions, admin.TabularInline):
    model = Override
    extra = 0
    fields = ("user", "starts_at", "ends_at", "note")
    ordering = ("-starts_at",)


@admin.register(Rotation)
class RotationAdmin(VersionedAdmin, AdminWritePermissions, admin.ModelAdmin):
    form = RotationForm
    list_display = ["name", "team", "shift_length_hours", "handoff_time", "time_zone", "start_date", "member_count"]
    list_filter = ["team", "time_zone"]
    search_fields = ["name", "team__name"]
    list_select_related = ["team"]
    readonly_fields = ["on_call_now"]
    inlines = [RotationMemberInline, OverrideInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rotation]:
        return super().get_queryset(request).annotate(number_of_members=Count("memberships"))

    @admin.display(description="members", ordering="number_of_members")
    def member_count(self, rotation: Rotation) -> int:
        return int(getattr(rotation, "number_of_members", 0))

    @admin.display(description="on call for the team now")
    def on_call_now(self, rotation: Rotation) -> str:
        if rotation.pk is None:
            return "-"
        oncall = oncall_for_team(rotation.team, timezone.now())
        if oncall is None:
            return "nobody (no rotation in effect)"
        until = timezone.localtime(oncall.shift_end).strftime("%Y-%m-%d %H:%M %Z")
        nxt = oncall.next_user.get_username() if oncall.next_user else "nobody"
        source = f"{oncall.rotation.name}, override" if oncall.overridden else oncall.rotation.name
        return f"{oncall.user.get_username()} ({source}) until {until}, then {nxt}"


@admin.register(Override)
class OverrideAdmin(StaffRolePermissions, admin.ModelAdmin):
    list_display = ["rotation", "user", "starts_at", "ends_at", "note"]
    list_filter = ["rotation"]
    search_fields = ["user__username", "note", "rotation__name"]
    list_select_related = ["rotation__team", "user"]
    date_hierarchy = "starts_at"

    deleters = staticmethod(is_staff_role)  # an override is undone by whoever may make one
