"""Mail in the admin: the mailboxes with their last poll and error (add, edit, poll now), the message log with what
became of each message (retry a failed one), and the addresses that bounced (remove one to mail it again)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from itsm.admin.base import AdminRolePermissions, AdminWritePermissions
from itsm.models import InboundMessage, Mailbox, SuppressedAddress
from itsm.services.mail import mail_retry
from itsm.services.mail_polling import mailbox_poll


@admin.register(Mailbox)
class MailboxAdmin(AdminRolePermissions, admin.ModelAdmin):
    list_display = [
        "name",
        "enabled",
        "host",
        "auth",
        "folder",
        "service",
        "last_success_at",
        "last_polled_at",
        "problem",
    ]
    list_filter = ["enabled"]
    readonly_fields = ["from_environment", "uidvalidity", "last_uid", "last_polled_at", "last_success_at", "last_error"]
    fieldsets = [
        (None, {"fields": ["name", "enabled", "from_environment"]}),
        ("Connection", {"fields": ["host", "port", "security"]}),
        (
            "Sign-in",
            {
                "fields": ["username", "auth", "password_file", "password_env"],
                "description": "The password, or with OAuth2 the client secret, is read from a file or an environment "
                "variable when the mailbox is read; it is never stored here.",
            },
        ),
        (
            "OAuth2",
            {
                "fields": ["oauth2_token_url", "oauth2_client_id", "oauth2_scope"],
                "description": "Only when signing in with OAuth2: the client-credentials grant of an app registration "
                "that may read this mailbox (Microsoft 365: docs/email.md).",
            },
        ),
        ("Folders", {"fields": ["folder", "failed_folder"]}),
        ("New tickets", {"fields": ["service", "priority"]}),
        ("State", {"fields": ["uidvalidity", "last_uid", "last_polled_at", "last_success_at", "last_error"]}),
    ]
    actions = ["poll_now"]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if not Mailbox.objects.filter(enabled=True).exists() and not settings.ITSM_MAIL_INBOX_URL:
            self.message_user(
                request,
                "Mail intake is off: no mailbox is enabled. Add one here, or set ITSM_MAIL_INBOX_URL (docs/email.md).",
                messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    @admin.display(description="last error")
    def problem(self, mailbox: Mailbox) -> str:
        return mailbox.last_error[:120] or "-"

    @admin.action(description="Poll the selected mailboxes now")
    def poll_now(self, request: HttpRequest, queryset: QuerySet[Mailbox]) -> None:
        for mailbox in queryset:
            counts = mailbox_poll(mailbox_id=mailbox.pk)
            if "error" in counts:
                self.message_user(request, f"{mailbox.name}: {counts['error']}", messages.ERROR)
            else:
                summary = ", ".join(f"{name} {value}" for name, value in counts.items())
                self.message_user(request, f"{mailbox.name}: {summary}", messages.SUCCESS)


@admin.register(InboundMessage)
class InboundMessageAdmin(AdminWritePermissions, admin.ModelAdmin):
    """The message log: agents read it, admins retry failed messages. Nothing here is edited."""

    list_display = ["received_at", "mailbox", "sender", "subject", "status", "ticket_link", "detail_short"]
    list_filter = ["status", "mailbox"]
    search_fields = ["sender", "subject", "message_id"]
    list_select_related = ["mailbox", "ticket"]
    date_hierarchy = "received_at"
    actions = ["retry"]
    exclude = ["raw"]
    readonly_fields = [
        "mailbox",
        "uidvalidity",
        "uid",
        "message_id",
        "sender",
        "subject",
        "status",
        "detail",
        "ticket",
        "comment",
        "size",
        "raw_truncated",
        "attempts",
        "received_at",
        "processed_at",
        "raw_text",
    ]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="ticket")
    def ticket_link(self, message: InboundMessage) -> str:
        if message.ticket_id is None:
            return "-"
        return format_html('<a href="../ticket/{}/change/">#{}</a>', message.ticket_id, message.ticket_id)

    @admin.display(description="detail")
    def detail_short(self, message: InboundMessage) -> str:
        return message.detail[:100]

    @admin.display(description="the message as received")
    def raw_text(self, message: InboundMessage) -> str:
        text = bytes(message.raw).decode("utf-8", errors="replace")
        return format_html("<pre style='white-space: pre-wrap; max-height: 30em; overflow: auto'>{}</pre>", text)

    @admin.action(description="Retry the selected failed messages")
    def retry(self, request: HttpRequest, queryset: QuerySet[InboundMessage]) -> None:
        if not self.writers(request.user):
            self.message_user(request, "Only admins can retry messages.", messages.ERROR)
            return
        for message in queryset:
            if message.status != InboundMessage.Status.FAILED:
                self.message_user(request, f"#{message.pk} is {message.status}, not failed: left as it is.")
                continue
            again = mail_retry(message_id=message.pk)
            level = messages.SUCCESS if again.status != InboundMessage.Status.FAILED else messages.WARNING
            self.message_user(request, f"#{message.pk}: {again.get_status_display()} {again.detail}".strip(), level)


@admin.register(SuppressedAddress)
class SuppressedAddressAdmin(AdminRolePermissions, admin.ModelAdmin):
    """Addresses that bounced for good get no mail; delete a row to mail the address again."""

    list_display = ["address", "status", "bounces", "last_bounced_at", "reason"]
    search_fields = ["address"]
    readonly_fields = ["address", "status", "bounces", "created_at", "last_bounced_at", "reason"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False
