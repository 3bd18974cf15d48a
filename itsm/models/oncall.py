from __future__ import annotations

import zoneinfo
from datetime import time
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from itsm.models.versioned import Versioned

# Longer shifts than this are almost certainly a typo (hours for days); it also bounds how far back the on-call
# computation has to look for overrides.
MAX_SHIFT_HOURS = 90 * 24


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in _time_zones():
        raise ValidationError(f"{value!r} is not a time zone name from the IANA database, e.g. Europe/Berlin or UTC.")


class Rotation(Versioned):
    """Who of a team is on call when: members take turns in order, one shift each, handing over at a time of
    day in the rotation's time zone. The cycle is anchored at `start_date` + `handoff_time`."""

    team = models.ForeignKey("itsm.Team", on_delete=models.CASCADE, related_name="rotations")
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="RotationMember", related_name="rotations", blank=True
    )
    shift_length_hours = models.PositiveIntegerField(
        default=7 * 24,
        validators=[
            MinValueValidator(1, "A shift must last at least one hour (24 for daily, 168 for weekly)."),
            MaxValueValidator(MAX_SHIFT_HOURS, f"A shift lasts at most {MAX_SHIFT_HOURS} hours (90 days)."),
        ],
        help_text="Length of one person's shift in hours on the wall clock (24 = daily, 168 = weekly).",
    )
    handoff_time = models.TimeField(default=time(9, 0), help_text="When shifts change hands, local time.")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    start_date = models.DateField(help_text="The first shift starts on this day at the handoff time.")

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="uniq_rotation_team_name"),
            models.CheckConstraint(
                condition=models.Q(shift_length_hours__gte=1, shift_length_hours__lte=MAX_SHIFT_HOURS),
                name="rotation_shift_length_in_range",
                violation_error_message=f"A shift lasts from 1 to {MAX_SHIFT_HOURS} hours.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team} / {self.name}" if self.team_id else self.name


class RotationMember(models.Model):
    """One place in a rotation's order; the lowest position takes the first shift."""

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["rotation", "position", "id"]
        indexes = [models.Index(fields=["rotation", "position"], name="idx_rotationmember_order")]

    def __str__(self) -> str:
        return f"{self.position}: {self.user}"


class Override(models.Model):
    """Someone else takes a rotation's shift for a period (a swap, a holiday, a sick day). Overrides win over
    the schedule; of overlapping overrides the one that starts last wins."""

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["rotation", "starts_at", "id"]
        indexes = [models.Index(fields=["rotation", "ends_at"], name="idx_override_rotation_ends")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="override_ends_after_start",
                violation_error_message="An override must end after it starts.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.rotation} from {self.starts_at:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "An override must end after it starts."})
