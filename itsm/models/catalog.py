from django.conf import settings
from django.db import models

from itsm.models.versioned import Versioned


class Team(Versioned):
    """A group of people that owns services and, later, an on-call rotation."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Service(Versioned):
    """What tickets, incidents, alerts and maintenance windows are about (api, database, cache, ...)."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="services")
    # When every alert of an incident about this service has resolved, resolve the incident too.
    auto_resolve_incidents = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
