"""The ticket JSON is written out by hand for speed (docs/benchmarks.md); it must stay what ModelSerializer gives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.utils import timezone
from rest_framework import serializers

from itsm.api.tickets import TicketSerializer
from itsm.models import Ticket
from itsm.services.tickets import comment_create, ticket_transition
from tests.factories import ServiceFactory, make_ticket

pytestmark = pytest.mark.django_db


class StockTicketSerializer(serializers.ModelSerializer):
    class Meta:
        model = Ticket
        fields = TicketSerializer.Meta.fields


def test_the_written_out_json_equals_the_model_serializers_for_tickets_in_every_state(
    requester: Any, agent: Any
) -> None:
    service = ServiceFactory.create()
    bare = make_ticket(requester, title="No service, no assignee")
    full = make_ticket(requester, priority="critical", service=service, assignee=agent, category="network")
    comment_create(ticket_id=full.pk, author=agent, body="On it.")
    for target in ("open", "resolved", "closed"):
        ticket_transition(ticket_id=full.pk, actor=agent, to=target)
    Ticket.objects.filter(pk=bare.pk).update(created_at=datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC))
    tickets = list(Ticket.objects.filter(pk__in=[bare.pk, full.pk]))
    assert all(t.closed_at is not None for t in tickets if t.pk == full.pk)
    for ticket in tickets:
        assert TicketSerializer(ticket).data == StockTicketSerializer(ticket).data


def test_times_follow_the_active_time_zone_as_drf_does(requester: Any) -> None:
    ticket = make_ticket(requester)
    with timezone.override("Europe/Berlin"):
        ours, stock = TicketSerializer(ticket).data, StockTicketSerializer(ticket).data
    assert ours == stock
    assert ours["created_at"].endswith(("+01:00", "+02:00"))
    assert TicketSerializer(ticket).data["created_at"].endswith("Z")
