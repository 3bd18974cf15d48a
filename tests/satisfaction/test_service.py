"""The rules of a satisfaction rating, through the service the API and the portal call: only the requester, only
once the ticket is resolved or closed, only once; a one-click link's token, tampered, expired and reused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import signing
from django.utils import timezone

from itsm.checks import check_settings
from itsm.exceptions import Conflict, InvalidInput, NotPermitted, NotReady
from itsm.models import Event, Ticket, TicketRating
from itsm.services.satisfaction import (
    RATING_LINK_SALT,
    rating_link,
    rating_token_read,
    ticket_rate,
    ticket_rate_by_token,
)
from itsm.services.tickets import ticket_transition
from tests.factories import make_ticket
from tests.satisfaction.conftest import resolved_ticket, token_of

pytestmark = pytest.mark.django_db


# Who, when, how often


def test_the_requester_rates_their_resolved_ticket_and_the_timeline_says_so(requester: Any, resolved: Ticket) -> None:
    rating = ticket_rate(ticket_id=resolved.pk, actor=requester, score=4, comment="Quick and friendly.")

    stored = TicketRating.objects.get(ticket=resolved)
    assert (stored.pk, stored.score, stored.comment, stored.rated_by) == (
        rating.pk,
        4,
        "Quick and friendly.",
        requester,
    )
    event = Event.objects.get(ticket=resolved, kind=Event.Kind.RATING)
    assert (event.actor, event.field, event.new_value, event.note) == (requester, "rating", "4", "Quick and friendly.")


def test_a_closed_ticket_can_be_rated_too(requester: Any) -> None:
    ticket = make_ticket(requester)
    ticket_transition(ticket_id=ticket.pk, actor=requester, to="closed")
    assert ticket_rate(ticket_id=ticket.pk, actor=requester, score=2).comment == ""


@pytest.mark.parametrize("path", [[], ["open"], ["in_progress"], ["in_progress", "pending"]])
def test_a_ticket_not_yet_resolved_cannot_be_rated(requester: Any, agent: Any, path: list[str]) -> None:
    ticket = make_ticket(requester)
    for status in path:
        ticket_transition(ticket_id=ticket.pk, actor=agent, to=status)
    with pytest.raises(NotReady, match="once it is resolved or closed"):
        ticket_rate(ticket_id=ticket.pk, actor=requester, score=5)
    assert not TicketRating.objects.exists()


def test_a_reopened_ticket_cannot_be_rated_until_resolved_again(requester: Any, resolved: Ticket) -> None:
    ticket_transition(ticket_id=resolved.pk, actor=requester, to="open")
    with pytest.raises(NotReady):
        ticket_rate(ticket_id=resolved.pk, actor=requester, score=5)


def test_a_second_rating_is_a_conflict_and_the_first_stays(requester: Any, resolved: Ticket) -> None:
    ticket_rate(ticket_id=resolved.pk, actor=requester, score=2, comment="Slow.")
    with pytest.raises(Conflict, match="already been rated"):
        ticket_rate(ticket_id=resolved.pk, actor=requester, score=5, comment="Actually great.")

    stored = TicketRating.objects.get(ticket=resolved)
    assert (stored.score, stored.comment) == (2, "Slow.")
    assert Event.objects.filter(ticket=resolved, kind=Event.Kind.RATING).count() == 1


@pytest.mark.parametrize("who", ["agent", "admin", "other_requester"])
def test_nobody_but_the_requester_may_rate(request: pytest.FixtureRequest, resolved: Ticket, who: str) -> None:
    with pytest.raises(NotPermitted, match="requester"):
        ticket_rate(ticket_id=resolved.pk, actor=request.getfixturevalue(who), score=5)
    assert not TicketRating.objects.exists()


def test_a_watcher_is_not_the_requester(requester: Any, other_requester: Any, resolved: Ticket) -> None:
    resolved.watchers.add(other_requester)
    with pytest.raises(NotPermitted):
        ticket_rate(ticket_id=resolved.pk, actor=other_requester, score=5)


# What a rating holds


@pytest.mark.parametrize("score", [0, 6, -1, "5", 4.5, True, None])
def test_a_score_outside_1_to_5_is_refused_naming_the_field(requester: Any, resolved: Ticket, score: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        ticket_rate(ticket_id=resolved.pk, actor=requester, score=score)
    assert refused.value.errors == {"score": ["Give a whole number from 1 (poor) to 5 (excellent)."]}


def test_a_comment_over_2000_characters_is_refused_and_one_of_2000_taken(requester: Any, resolved: Ticket) -> None:
    with pytest.raises(InvalidInput) as refused:
        ticket_rate(ticket_id=resolved.pk, actor=requester, score=9, comment="x" * 2001)
    assert set(refused.value.errors) == {"score", "comment"}
    assert ticket_rate(ticket_id=resolved.pk, actor=requester, score=3, comment="x" * 2000).comment == "x" * 2000


# The one-click link


def test_a_rating_link_rates_as_the_requester_with_its_score(requester: Any, resolved: Ticket, settings: Any) -> None:
    settings.ITSM_PUBLIC_URL = "https://desk.example.com"
    link = rating_link(resolved, 5)
    assert link.startswith("https://desk.example.com/portal/rate/")
    assert link.endswith("/")

    read = rating_token_read(token=token_of(link))
    assert (read.ticket_id, read.requester_id, read.score) == (resolved.pk, requester.pk, 5)
    rating = ticket_rate_by_token(token=token_of(link), comment="Thanks!")
    assert (rating.ticket_id, rating.score, rating.comment, rating.rated_by) == (resolved.pk, 5, "Thanks!", requester)
    assert Event.objects.get(ticket=resolved, kind=Event.Kind.RATING).actor == requester


def test_each_score_has_its_own_link(resolved: Ticket) -> None:
    links = {rating_link(resolved, score) for score in range(1, 6)}
    assert len(links) == 5
    with pytest.raises(ValueError, match="score"):
        rating_link(resolved, 6)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # the signature
        lambda token: token.replace(token.split(":")[0], signing.b64_encode(b"[1,1,5]").decode()),  # the payload
        lambda token: "not-a-token",
        lambda token: "",
    ],
)
def test_a_tampered_token_is_invalid_input_and_rates_nothing(resolved: Ticket, tamper: Any) -> None:
    token = tamper(token_of(rating_link(resolved, 5)))
    with pytest.raises(InvalidInput) as refused:
        ticket_rate_by_token(token=token)
    assert refused.value.errors == {"token": ["This rating link is not valid: rate the ticket on its page instead."]}
    assert not TicketRating.objects.exists()


def test_a_token_signed_for_something_else_is_not_a_rating_link(resolved: Ticket) -> None:
    for token in (
        signing.dumps([resolved.pk, resolved.requester_id, 5]),  # no salt: another feature's signature
        signing.dumps({"ticket": resolved.pk}, salt=RATING_LINK_SALT),  # our salt, another shape
    ):
        with pytest.raises(InvalidInput):
            ticket_rate_by_token(token=token)


def test_a_token_expires_after_the_configured_days(resolved: Ticket, settings: Any) -> None:
    settings.ITSM_RATING_LINK_DAYS = 30
    sent = timezone.now()
    with time_machine.travel(sent, tick=False):
        token = token_of(rating_link(resolved, 4))
    with time_machine.travel(sent + timedelta(days=30, seconds=1), tick=False), pytest.raises(InvalidInput) as refused:
        ticket_rate_by_token(token=token)
    assert refused.value.errors == {"token": ["This rating link has expired: rate the ticket on its page instead."]}
    with time_machine.travel(sent + timedelta(days=29, hours=23), tick=False):
        assert ticket_rate_by_token(token=token).score == 4


def test_a_token_used_twice_is_a_conflict_the_second_time(resolved: Ticket) -> None:
    token = token_of(rating_link(resolved, 4))
    ticket_rate_by_token(token=token)
    with pytest.raises(Conflict):
        ticket_rate_by_token(token=token)
    with pytest.raises(Conflict):  # nor does another score's link overwrite it
        ticket_rate_by_token(token=token_of(rating_link(resolved, 1)))
    assert TicketRating.objects.get(ticket=resolved).score == 4


def test_a_token_of_a_deleted_ticket_is_invalid(resolved: Ticket) -> None:
    token = token_of(rating_link(resolved, 4))
    Ticket.objects.filter(pk=resolved.pk).delete()
    with pytest.raises(InvalidInput):
        ticket_rate_by_token(token=token)


def test_a_token_follows_the_ticket_rules_too(requester: Any, agent: Any) -> None:
    ticket = resolved_ticket(requester, agent)
    token = token_of(rating_link(ticket, 3))
    ticket_transition(ticket_id=ticket.pk, actor=requester, to="open")  # reopened after the e-mail
    with pytest.raises(NotReady):
        ticket_rate_by_token(token=token)
    with pytest.raises(InvalidInput) as refused:
        ticket_rate_by_token(token=token, comment="x" * 2001)
    assert set(refused.value.errors) == {"comment"}


def test_a_link_lifetime_under_a_day_fails_the_system_check(settings: Any) -> None:
    settings.ITSM_RATING_LINK_DAYS = 0
    assert "itsm.E014" in [message.id for message in check_settings()]
    settings.ITSM_RATING_LINK_DAYS = 1
    assert "itsm.E014" not in [message.id for message in check_settings()]
