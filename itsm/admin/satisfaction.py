"""Satisfaction ratings in the admin: listed, and summed up on their ticket's page, read-only (the requester gives one
through the API, the portal or a rating link; nobody edits or deletes it here)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from itsm.admin.base import StaffRolePermissions
from itsm.models import Ticket, TicketRating
from itsm.models.satisfaction import RECORDED_FIELDS


def rating_summary(ticket: Ticket) -> str:
    """The ticket's rating in a line, for its page: "4/5 by rita: Quick and friendly." or "-"."""
    if ticket.pk is None:
        return "-"
    rating = TicketRating.objects.filter(ticket=ticket).select_related("rated_by").first()
    if rating is None:
        return "-"
    text = f"{rating.score}/5 by {rating.rated_by.get_username()}"
    return f"{text}: {rating.comment}" if rating.comment else text


@admin.register(TicketRating)
class TicketRatingAdmin(StaffRolePermissions, admin.ModelAdmin):
    list_display = ["ticket", "score", "comment", "rated_by", "created_at"]
    list_filter = ["score", ("ticket__service", admin.RelatedOnlyFieldListFilter), "ticket__sla_policy"]
    list_select_related = ["ticket", "rated_by"]
    search_fields = ["=ticket__id", "comment", "rated_by__username"]
    date_hierarchy = "created_at"
    fields = RECORDED_FIELDS
    readonly_fields = RECORDED_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet[TicketRating]:
        return super().get_queryset(request).select_related("ticket", "rated_by")

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
