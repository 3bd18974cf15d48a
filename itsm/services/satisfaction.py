"""Satisfaction: the requester rates their resolved ticket once, from 1 to 5 with an optional comment, in the API, in
the portal, or through a one-click link of the resolution e-mail (a signed token naming the ticket, the requester and
the score)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from itsm.exceptions import Conflict, InvalidInput, NotPermitted, NotReady
from itsm.lifecycles import TICKET_DONE_STATUSES
from itsm.models import Event, Ticket, TicketRating
from itsm.models.satisfaction import COMMENT_MAX_LENGTH, SCORES
from itsm.services.events import event_record

# A token made for rating links is good for nothing else that signs with the same secret key.
RATING_LINK_SALT = "itsm.satisfaction.rating-link"
BAD_LINK = "This rating link is not valid: rate the ticket on its page instead."
EXPIRED_LINK = "This rating link has expired: rate the ticket on its page instead."


@dataclass(frozen=True)
class RatingLink:
    """What a rating link's token says: this requester gives this ticket this score."""

    ticket_id: int
    requester_id: int
    score: int


def ticket_rate(*, ticket_id: int, actor: Any, score: int, comment: str = "") -> TicketRating:
    """The requester's rating of their resolved or closed ticket, once (a second one is a Conflict, not an
    overwrite); an event on the ticket. Anyone else is NotPermitted; an open ticket is NotReady."""
    _check(score, comment)
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
        return _rate(ticket, actor, score, comment)


def rating_link(ticket: Ticket, score: int) -> str:
    """The one-click URL that rates `ticket` with `score` as its requester, for the resolution e-mail:
    `{ITSM_PUBLIC_URL}/portal/rate/<token>/`, valid for ITSM_RATING_LINK_DAYS days."""
    if score not in SCORES:
        raise ValueError(f"A score is {SCORES.start} to {SCORES.stop - 1}, not {score}.")
    token = signing.dumps([ticket.pk, ticket.requester_id, score], salt=RATING_LINK_SALT, compress=False)
    return f"{settings.ITSM_PUBLIC_URL}/portal/rate/{token}/"


def rating_token_read(*, token: str) -> RatingLink:
    """What a rating link's token says, without rating: for the page that asks to confirm (a mail scanner that
    follows every link must not rate). A tampered or expired token is InvalidInput naming `token`."""
    try:
        value = signing.loads(token, salt=RATING_LINK_SALT, max_age=timedelta(days=settings.ITSM_RATING_LINK_DAYS))
    except signing.SignatureExpired:
        raise InvalidInput({"token": [EXPIRED_LINK]}) from None
    except signing.BadSignature:
        raise InvalidInput({"token": [BAD_LINK]}) from None
    if not (isinstance(value, list) and len(value) == 3 and all(type(item) is int for item in value)):
        raise InvalidInput({"token": [BAD_LINK]})  # signed by us, but not as a rating link
    return RatingLink(ticket_id=value[0], requester_id=value[1], score=value[2])


def ticket_rate_by_token(*, token: str, comment: str = "") -> TicketRating:
    """Rate as a rating link says, as the ticket's requester: a tampered or expired token is InvalidInput, a second
    use (or any earlier rating) a Conflict."""
    link = rating_token_read(token=token)
    _check(link.score, comment)
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().select_related("requester").filter(pk=link.ticket_id).first()
        if ticket is None or ticket.requester_id != link.requester_id:
            raise InvalidInput({"token": [BAD_LINK]})
        return _rate(ticket, ticket.requester, link.score, comment)


def _check(score: Any, comment: str) -> None:
    errors = {}
    if type(score) is not int or score not in SCORES:
        errors["score"] = [f"Give a whole number from {SCORES.start} (poor) to {SCORES.stop - 1} (excellent)."]
    if len(comment) > COMMENT_MAX_LENGTH:
        errors["comment"] = [f"Ensure this field has no more than {COMMENT_MAX_LENGTH} characters."]
    if "\x00" in comment:
        errors["comment"] = ["Null characters are not allowed."]
    if errors:
        raise InvalidInput(errors)


def _rate(ticket: Ticket, actor: Any, score: int, comment: str) -> TicketRating:
    """The rules, on the locked ticket row (which also makes a second rating wait for the first and then see it)."""
    if getattr(actor, "pk", None) is None or actor.pk != ticket.requester_id:
        raise NotPermitted("Only the ticket's requester can rate it.")
    if ticket.status not in TICKET_DONE_STATUSES:
        raise NotReady("A ticket can be rated once it is resolved or closed.")
    if TicketRating.objects.filter(ticket=ticket).exists():
        raise Conflict("This ticket has already been rated.")
    now = timezone.now()
    rating = TicketRating.objects.create(ticket=ticket, score=score, comment=comment, rated_by=actor, created_at=now)
    event_record(ticket=ticket, actor=actor, kind=Event.Kind.RATING, field="rating", new=score, note=comment, at=now)
    return rating
