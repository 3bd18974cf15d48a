from __future__ import annotations

import zoneinfo
from datetime import time

from django.core.exceptions import ValidationError
from django.db import models

from itsm.models.tickets import Ticket


def _validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone (for example Europe/Berlin or UTC).")


def _validate_weekdays(value: list[int]) -> None:
    if not isinstance(value, list) or not value or any(day not in range(7) for day in value):
        raise ValidationError("Give at least one weekday as a number, 0 for Monday to 6 for Sunday.")


def _default_weekdays() -> list[int]:
    return [0, 1, 2, 3, 4]


class BusinessCalendar(models.Model):
    """When the SLA clock runs: around the clock, or on working hours of chosen weekdays minus holidays."""

    class Kind(models.TextChoices):
        ALWAYS = "24x7", "24×7"
        BUSINESS_HOURS = "business_hours", "Business hours"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ALWAYS)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[_validate_time_zone])
    weekdays = models.JSONField(
        default=_default_weekdays, validators=[_validate_weekdays], help_text="0 = Monday … 6 = Sunday"
    )
    day_start = models.TimeField(default=time(9, 0))
    day_end = models.TimeField(default=time(17, 0))

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(day_end__gt=models.F("day_start")), name="calendar_day_end_after_start"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.day_start is not None and self.day_end is not None and self.day_end <= self.day_start:
            raise ValidationError({"day_end": "The working day must end after it starts."})


class Holiday(models.Model):
    """A day on which a business-hours calendar does not run."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="uniq_holiday_calendar_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}".strip()


class SlaPolicy(models.Model):
    """First-response and resolution targets per priority, measured on a calendar. A ticket runs on the policy whose
    scope matches it most closely (SlaPolicyScope), else on the one default policy."""

    name = models.CharField(max_length=100, unique=True)
    is_default = models.BooleanField(default=False)
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="policies")
    critical_response_minutes = models.PositiveIntegerField(default=15)
    critical_resolution_minutes = models.PositiveIntegerField(default=4 * 60)
    high_response_minutes = models.PositiveIntegerField(default=60)
    high_resolution_minutes = models.PositiveIntegerField(default=24 * 60)
    medium_response_minutes = models.PositiveIntegerField(default=4 * 60)
    medium_resolution_minutes = models.PositiveIntegerField(default=3 * 24 * 60)
    low_response_minutes = models.PositiveIntegerField(default=24 * 60)
    low_resolution_minutes = models.PositiveIntegerField(default=5 * 24 * 60)

    class Meta:
        verbose_name_plural = "SLA policies"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="uniq_default_sla_policy"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def targets_for(self, priority: str) -> tuple[int, int]:
        """(first-response minutes, resolution minutes) for a ticket priority."""
        return (getattr(self, f"{priority}_response_minutes"), getattr(self, f"{priority}_resolution_minutes"))


class SlaPolicyScope(models.Model):
    """One case a policy applies to: tickets of a service, of a priority, or of both. The most specific case that
    matches a ticket wins (service and priority, then service, then priority); no match means the default policy.
    The database holds the rule that one case belongs to one policy."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="scopes")
    service = models.ForeignKey(
        "itsm.Service",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="sla_scopes",
        help_text="Empty: tickets of any service.",
    )
    priority = models.CharField(
        max_length=20, blank=True, choices=Ticket.Priority.choices, help_text="Empty: tickets of any priority."
    )

    class Meta:
        verbose_name = "case the policy applies to"
        verbose_name_plural = "cases the policy applies to"
        ordering = ["service__name", "priority"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(service__isnull=False) | ~models.Q(priority=""),
                name="sla_scope_service_or_priority",
                violation_error_message="Name a service, a priority or both (the default policy covers the rest).",
            ),
            models.CheckConstraint(
                condition=models.Q(priority__in=["", *Ticket.Priority.values]), name="sla_scope_priority_known"
            ),
            models.UniqueConstraint(
                fields=["service", "priority"],
                condition=models.Q(service__isnull=False),
                name="uniq_sla_scope_service_priority",
                violation_error_message="A policy already applies to this service and priority.",
            ),
            models.UniqueConstraint(
                fields=["priority"],
                condition=models.Q(service__isnull=True),
                name="uniq_sla_scope_priority",
                violation_error_message="A policy already applies to this priority of any service.",
            ),
        ]

    def __str__(self) -> str:
        service = self.service.name if self.service_id is not None and self.service else "any service"
        return f"{service}, {self.priority or 'any priority'}"
