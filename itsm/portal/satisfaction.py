"""Satisfaction in the portal: the rating form of a resolved or closed ticket's page, and the page a one-click rating
link of the resolution e-mail opens. Opening a link never rates (mail scanners follow every link): the page asks to
confirm, and the confirmation posts. Both call itsm.services.satisfaction."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from itsm.exceptions import Conflict, InvalidInput, NotPermitted, NotReady
from itsm.lifecycles import TICKET_DONE_STATUSES
from itsm.models import Ticket
from itsm.portal.forms import SCORE_LABELS, RatingForm, RatingLinkForm
from itsm.portal.views import add_errors, own_ticket, ticket_page
from itsm.queries.satisfaction import rated_ticket, ticket_rating
from itsm.services.satisfaction import BAD_LINK, EXPIRED_LINK, rating_token_read, ticket_rate, ticket_rate_by_token

RATE_PAGE = "portal/rate.html"
# The service's words for a link it refuses, as the portal says them.
LINK_PROBLEMS = {
    BAD_LINK: gettext_lazy("This rating link is not valid: rate the ticket on its page instead."),
    EXPIRED_LINK: gettext_lazy("This rating link has expired: rate the ticket on its page instead."),
}


@login_required
@require_POST
def ticket_rate_view(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = own_ticket(request, pk)
    form = RatingForm(request.POST)
    if form.is_valid():
        try:
            ticket_rate(
                ticket_id=ticket.pk,
                actor=request.user,
                score=form.cleaned_data["score"],
                comment=form.cleaned_data["comment"],
            )
        except InvalidInput as error:
            add_errors(form, error)
        except (Conflict, NotReady, NotPermitted):
            # Rated in another tab, or reopened by an agent meanwhile: the page as it is now says which.
            messages.error(request, _("This ticket has changed in the meantime; here it is as it is now."))
            return redirect("portal:ticket", pk=ticket.pk)
        else:
            messages.success(request, _("Thank you for your rating."))
            return redirect("portal:ticket", pk=ticket.pk)
    return ticket_page(request, ticket, rating=form)


@require_http_methods(["GET", "HEAD", "POST"])
def rating_link_view(request: HttpRequest, token: str) -> HttpResponse:
    """/portal/rate/<token>/: no sign-in needed, the signed link names the ticket, its requester and the score."""
    try:
        link = rating_token_read(token=token)
    except InvalidInput as error:
        return link_problem(request, error.errors["token"][0])
    ticket = rated_ticket(ticket_id=link.ticket_id, requester_id=link.requester_id)
    if ticket is None:
        return link_problem(request, BAD_LINK)
    form = RatingLinkForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and ticket_rating(ticket) is None and form.is_valid():
        try:
            ticket_rate_by_token(token=token, comment=form.cleaned_data["comment"])
        except InvalidInput as error:
            add_errors(form, error)
        except (Conflict, NotReady):
            pass  # rated in another tab meanwhile, or reopened since the e-mail: the page read again says which
        else:
            ticket = rated_ticket(ticket_id=link.ticket_id, requester_id=link.requester_id)
            return link_page(request, link.score, ticket, thanks=True)
        ticket = rated_ticket(ticket_id=link.ticket_id, requester_id=link.requester_id)
    return link_page(request, link.score, ticket, form=form)


def link_page(
    request: HttpRequest,
    score: int,
    ticket: Ticket | None,
    *,
    form: RatingLinkForm | None = None,
    thanks: bool = False,
) -> HttpResponse:
    """The ticket's rating if it has one, else the form that confirms `score`, or why the ticket cannot be rated."""
    if ticket is None:
        return link_problem(request, BAD_LINK)
    rating = ticket_rating(ticket)
    context = {
        "ticket": ticket,
        "score": score,
        "score_label": SCORE_LABELS.get(score, score),
        "rating": rating,
        "ratable": rating is None and ticket.status in TICKET_DONE_STATUSES,
        "form": form or RatingLinkForm(),
        "thanks": thanks,
    }
    return render(request, RATE_PAGE, context, status=400 if form is not None and form.errors else 200)


def link_problem(request: HttpRequest, problem: str) -> HttpResponse:
    """A tampered, expired or foreign link: a page that says so, in the reader's language, and where to go."""
    return render(request, RATE_PAGE, {"problem": LINK_PROBLEMS.get(problem, problem)}, status=400)
