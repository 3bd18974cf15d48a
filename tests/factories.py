"""factory_boy factories. Tickets are made through the service, so their SLA fields and events are real."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model

from itsm.models import Service, Team, Ticket
from itsm.services.tickets import ticket_create
from itsm.services.users import user_upsert


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")


def make_user(username: str, role: str = "requester", password: str = "correct-horse-battery") -> Any:
    user, _ = user_upsert(username=username, role=role, password=password, email=f"{username}@example.com")
    return user


class TeamFactory(factory.django.DjangoModelFactory[Team]):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class ServiceFactory(factory.django.DjangoModelFactory[Service]):
    class Meta:
        model = Service

    name = factory.Sequence(lambda n: f"Service {n}")
    slug = factory.Sequence(lambda n: f"service-{n}")
    team = factory.SubFactory(TeamFactory)


def make_ticket(requester: Any, **fields: Any) -> Ticket:
    fields.setdefault("title", "Printer on floor 3 jams")
    return ticket_create(requester=requester, **fields)
