"""Notifications: the delivery log with its attempts and a redeliver action (agents and admins), the admins'
webhook endpoints, and users' channels."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from itsm.admin.base import AdminRolePermissions, ReadOnlyInlinePermissions, StaffRolePermissions
from itsm.admin.versioned import VersionedAdmin
from itsm.exceptions import InvalidInput, NotPermitted, NotReady
from itsm.models import DeliveryAttempt, Notification, NotificationChannel, NotificationPreference, WebhookEndpoint
from itsm.models.notifications import DELIVERY_FIELDS
from itsm.notifiers.ssrf import validate_webhook_url
from itsm.services import ticket_notifications
from itsm.services.notification_channels import (
    ROTATION_WINDOW,
    Signed,
    notification_channel_check,
    target_display,
    webhook_secret_rotate,
)
from itsm.services.notifications import notification_redeliver


def rotate_secrets(admin_site: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    """The admin action of both webhook admins: a new secret each, the former one signing beside it for a day."""
    rotated: list[Signed] = [webhook_secret_rotate(signed=signed) for signed in queryset]
    if rotated:
        until = max(signed.previous_secret_expires_at or timezone.now() for signed in rotated)
        admin_site.message_user(
            request,
            f"{len(rotated)} signing secret(s) rotated: open each to copy the new secret to its receiver. The former "
            f"secrets sign beside them until {until:%Y-%m-%d %H:%M} UTC.",
            messages.SUCCESS,
        )


ROTATE_DESCRIPTION = (
    f"Rotate the signing secret (the former one signs beside it for {ROTATION_WINDOW.total_seconds() / 3600:g} hours)"
)

LOG_FIELDS = (
    "channel",
    "shown_target",
    "recipient",
    "endpoint",
    "user_channel",
    "incident",
    "urgent",
    "subject",
    "body",
    "payload",
    *DELIVERY_FIELDS,
)


class DeliveryAttemptInline(ReadOnlyInlinePermissions, admin.TabularInline):
    model = DeliveryAttempt
    fields = ("attempted_at", "success", "status_code", "duration_ms", "error")
    readonly_fields = fields


@admin.register(Notification)
class NotificationAdmin(StaffRolePermissions, admin.ModelAdmin):
    list_display = ["id", "created_at", "channel", "shown_target", "recipient", "incident", "urgent", "status"]
    list_display += ["attempts", "next_attempt_at", "delivered_at"]
    list_filter = ["status", "channel", "urgent"]
    search_fields = ["subject", "recipient__username", "endpoint__name"]
    list_select_related = ["recipient", "incident"]
    date_hierarchy = "created_at"
    actions = ["redeliver"]
    inlines = [DeliveryAttemptInline]
    fields = LOG_FIELDS
    readonly_fields = LOG_FIELDS

    @admin.display(description="target")
    def shown_target(self, notification: Notification) -> str:
        return target_display(notification.channel, notification.target)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written by the platform only

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the log is read-only; "Redeliver" is the one thing to do with it

    @admin.action(description="Redeliver the selected notifications")
    def redeliver(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        queued, refused = 0, []
        for notification in queryset:
            try:
                notification_redeliver(notification_id=notification.pk, actor=request.user)
                queued += 1
            except (NotReady, NotPermitted) as exc:
                refused.append(f"#{notification.pk}: {exc}")
        if queued:
            self.message_user(request, f"{queued} notification(s) queued for redelivery.", messages.INFO)
        for message in refused:
            self.message_user(request, message, messages.WARNING)


class WebhookEndpointForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ["name", "kind", "url", "secret", "enabled", "team"]

    def clean_url(self) -> str:
        url = str(self.cleaned_data["url"]).strip()
        validate_webhook_url(url)
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AdminRolePermissions, admin.ModelAdmin):
    """Admins only: the URL and the secret are credentials."""

    form = WebhookEndpointForm
    list_display = ["name", "kind", "shown_url", "team", "enabled", "created_at"]
    list_filter = ["kind", "enabled", "team"]
    search_fields = ["name"]
    list_select_related = ["team"]
    readonly_fields = ["previous_secret_expires_at"]
    actions = ["rotate_secret"]

    @admin.action(description=ROTATE_DESCRIPTION)
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        rotate_secrets(self, request, queryset.filter(kind=WebhookEndpoint.Kind.WEBHOOK))

    @admin.display(description="URL")
    def shown_url(self, endpoint: WebhookEndpoint) -> str:
        return target_display(endpoint.kind, endpoint.url)


class NotificationChannelForm(forms.ModelForm):
    class Meta:
        model = NotificationChannel
        fields = ["user", "channel", "target", "enabled", "secret"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors or not cleaned.get("user"):
            return cleaned
        try:
            cleaned["target"] = notification_channel_check(
                user=cleaned["user"],
                channel=cleaned.get("channel"),
                target=cleaned.get("target", ""),
                exclude=self.instance.pk,
            )
        except InvalidInput as exc:
            for field, errors in exc.errors.items():
                for error in errors:
                    self.add_error(field if field in self.fields else None, error)
        return cleaned


@admin.register(NotificationChannel)
class NotificationChannelAdmin(VersionedAdmin, AdminRolePermissions, admin.ModelAdmin):
    """Users' channels, for admins helping someone; users manage their own through the API."""

    form = NotificationChannelForm
    list_display = ["user", "channel", "shown_target", "enabled", "created_at"]
    list_filter = ["channel", "enabled"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]
    readonly_fields = ["previous_secret_expires_at"]
    actions = ["rotate_secret"]

    @admin.action(description=ROTATE_DESCRIPTION)
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[NotificationChannel]) -> None:
        rotate_secrets(self, request, queryset.filter(channel=Notification.Channel.WEBHOOK))

    @admin.display(description="target")
    def shown_target(self, channel: NotificationChannel) -> str:
        return target_display(channel.channel, channel.target)


class NotificationPreferenceForm(forms.ModelForm):
    off = forms.MultipleChoiceField(
        choices=[(name, event.label) for name, event in ticket_notifications.EVENTS.items()],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Ticket e-mail switched off",
    )

    class Meta:
        model = NotificationPreference
        fields = ["user", "email", "off"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(AdminRolePermissions, admin.ModelAdmin):
    """What a user hears about tickets by e-mail (users change their own through the API)."""

    form = NotificationPreferenceForm
    list_display = ["user", "email", "switched_off", "updated_at"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]

    @admin.display(description="switched off")
    def switched_off(self, preference: NotificationPreference) -> str:
        return ", ".join(preference.off) or "-"

    def save_model(self, request: HttpRequest, obj: NotificationPreference, form: Any, change: bool) -> None:
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)
