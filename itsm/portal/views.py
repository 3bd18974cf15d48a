"""The requester portal's ticket pages: my tickets, a new ticket, a ticket's conversation, a reply, confirming or
reopening, and the files. Every read starts from itsm.queries (a ticket that is not the user's own is a 404), every
write is one service call, and every form posts, then redirects (POST-redirect-GET)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from itsm.exceptions import InvalidInput, NotPermitted
from itsm.lifecycles import TICKET_DONE_STATUSES, TransitionNotAllowed, ticket_requester_moves
from itsm.models import Ticket
from itsm.portal.forms import MoveForm, NewTicketForm, RatingForm, ReplyForm, TicketFilterForm, uploads_of
from itsm.portal.sla import sla_summary
from itsm.queries.conversations import conversation_files, ticket_conversation
from itsm.queries.satisfaction import ticket_rating
from itsm.queries.tickets import tickets_matching, tickets_requested_by
from itsm.replica import reads_from_replica
from itsm.services.tickets import comment_create, ticket_create, ticket_transition

logger = logging.getLogger(__name__)

STATUS_LABELS: dict[str, Any] = {
    Ticket.Status.NEW: gettext_lazy("New"),
    Ticket.Status.OPEN: gettext_lazy("Open"),
    Ticket.Status.IN_PROGRESS: gettext_lazy("In progress"),
    Ticket.Status.PENDING: gettext_lazy("Waiting for you"),
    Ticket.Status.RESOLVED: gettext_lazy("Resolved"),
    Ticket.Status.CLOSED: gettext_lazy("Closed"),
}
# Who the next step is up to, by status.
WAITING_ON: dict[str, Any] = {
    Ticket.Status.NEW: gettext_lazy("us"),
    Ticket.Status.OPEN: gettext_lazy("us"),
    Ticket.Status.IN_PROGRESS: gettext_lazy("us"),
    Ticket.Status.PENDING: gettext_lazy("you"),
    Ticket.Status.RESOLVED: gettext_lazy("your confirmation"),
    Ticket.Status.CLOSED: gettext_lazy("nobody"),
}
LIST_FIELDS = ("id", "title", "status", "created_at", "updated_at", "service__name")


def status_context(ticket: Ticket) -> dict[str, Any]:
    return {"status_label": STATUS_LABELS[ticket.status], "waiting_on": WAITING_ON[ticket.status]}


@login_required
@require_safe
@reads_from_replica
def ticket_list(request: HttpRequest) -> HttpResponse:
    """My tickets: newest first, filtered (open, closed, all) and searched, a page at a time."""
    form = TicketFilterForm(request.GET)
    state = form.state_or_default()
    tickets = tickets_requested_by(request.user)
    # "Open" lists everything not yet closed: a resolved ticket still waits on the requester's confirmation.
    if state == "open":
        tickets = tickets.exclude(status=Ticket.Status.CLOSED)
    elif state == "closed":
        tickets = tickets.filter(status=Ticket.Status.CLOSED)
    terms = form.cleaned_data.get("q", "") if form.is_valid() else ""
    tickets = tickets_matching(tickets, terms, among_few=True)  # one requester's tickets
    # The index on (requester, created_at) gives the page in order; description and the search column stay behind.
    tickets = tickets.select_related("service").only(*LIST_FIELDS).order_by("-created_at", "-id")
    page = Paginator(tickets, settings.ITSM_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {"ticket": ticket, "url": reverse("portal:ticket", args=[ticket.pk]), **status_context(ticket)}
        for ticket in page.object_list
    ]
    query = {"state": state, **({"q": terms} if terms else {})}
    return render(
        request,
        "portal/tickets.html",
        {"nav": "tickets", "form": form, "state": state, "terms": terms, "page": page, "rows": rows, "query": query},
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def ticket_new(request: HttpRequest) -> HttpResponse:
    """Open a ticket, with files: one refused file is a message beside the field, and nothing is written."""
    form = NewTicketForm(request.POST, request.FILES) if request.method == "POST" else NewTicketForm()
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            ticket = ticket_create(
                requester=request.user,
                title=data["title"],
                description=data["description"],
                service=data["service"],
                uploads=uploads_of(data["attachments"]),
            )
        except InvalidInput as error:
            add_errors(form, error)
        else:
            messages.success(
                request, _("Your ticket #%(id)d is open. We will answer here and by e-mail.") % {"id": ticket.pk}
            )
            return redirect("portal:ticket", pk=ticket.pk)
    return render(request, "portal/ticket_new.html", {"nav": "new", "form": form, "sla": sla_summary()})


def own_ticket(request: HttpRequest, pk: int) -> Ticket:
    """The user's own ticket, or a 404: another requester's ticket does not exist as far as the portal says."""
    return get_object_or_404(tickets_requested_by(request.user).select_related("service", "rating"), pk=pk)


def offered_moves(ticket: Ticket) -> frozenset[str]:
    """The moves the portal offers: confirm or reopen, on a resolved ticket only. Withdrawing a new or open ticket
    (closed, which the service allows) is final, and stays with the API and e-mail rather than one stray click."""
    return ticket_requester_moves(ticket.status) if ticket.status == Ticket.Status.RESOLVED else frozenset()


def ticket_page(
    request: HttpRequest,
    ticket: Ticket,
    *,
    reply: ReplyForm | None = None,
    move: MoveForm | None = None,
    rating: RatingForm | None = None,
) -> HttpResponse:
    moves = offered_moves(ticket)
    given = ticket_rating(ticket)
    conversation = ticket_conversation(request.user, ticket)
    return render(
        request,
        "portal/ticket.html",
        {
            "ticket": ticket,
            **status_context(ticket),
            "conversation": conversation,
            "entries": [(entry, STATUS_LABELS.get(entry.new_status, "")) for entry in conversation.entries],
            "reply_form": reply or ReplyForm(),
            "move_form": move or MoveForm(moves=moves),
            "moves": moves,
            # Asked once the ticket is resolved (or closed), until the requester answers.
            "rating": given,
            "rating_form": (rating or RatingForm())
            if given is None and ticket.status in TICKET_DONE_STATUSES
            else None,
        },
    )


@login_required
@require_safe
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return ticket_page(request, own_ticket(request, pk))


@login_required
@require_POST
def ticket_reply(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = own_ticket(request, pk)
    form = ReplyForm(request.POST, request.FILES)
    if ticket.status == Ticket.Status.CLOSED:
        form.add_error(None, _("This ticket is closed. Open a new ticket to follow it up."))
    if form.is_valid():
        try:
            comment = comment_create(
                ticket_id=ticket.pk,
                author=request.user,
                body=form.cleaned_data["body"],
                uploads=uploads_of(form.cleaned_data["attachments"]),
            )
        except InvalidInput as error:
            add_errors(form, error)
        else:
            messages.success(request, _("Your reply was added."))
            return redirect(reverse("portal:ticket", args=[ticket.pk]) + f"#comment-{comment.pk}")
    return ticket_page(request, ticket, reply=form)


@login_required
@require_POST
def ticket_move(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm the resolution (closed) or reopen (open): only the moves the requester may make from here."""
    ticket = own_ticket(request, pk)
    form = MoveForm(request.POST, moves=offered_moves(ticket))
    if not form.is_valid():
        if "to" in form.errors:
            # The page was out of date (another tab, an agent's change): show the ticket as it is now.
            messages.error(request, _("This ticket has changed in the meantime; here it is as it is now."))
            return redirect("portal:ticket", pk=ticket.pk)
        return ticket_page(request, ticket, move=form)
    to = form.cleaned_data["to"]
    try:
        ticket_transition(ticket_id=ticket.pk, actor=request.user, to=to, note=form.cleaned_data["note"])
    except (TransitionNotAllowed, NotPermitted):
        messages.error(request, _("This ticket has changed in the meantime; here it is as it is now."))
    else:
        if to == Ticket.Status.CLOSED:
            messages.success(request, _("Thank you for confirming. The ticket is closed."))
        else:
            messages.success(request, _("The ticket is open again; we will get back to you."))
    return redirect("portal:ticket", pk=ticket.pk)


@login_required
@require_safe
def file_download(request: HttpRequest, pk: int) -> FileResponse:
    """A file of the user's own ticket (never one of an internal note), as a download that is never rendered."""
    attachment = get_object_or_404(conversation_files(request.user), pk=pk)
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError:
        logger.error("attachment %s: its file %s is missing from storage", attachment.pk, attachment.file.name)
        raise Http404(_("The file is missing from storage.")) from None
    response = FileResponse(
        handle, as_attachment=True, filename=attachment.filename, content_type=attachment.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-cache"
    return response


@require_safe
def tickets_redirect(request: HttpRequest) -> HttpResponse:
    """/portal/tickets/ is where a ticket's address leads up to: the list."""
    query = request.META.get("QUERY_STRING", "")
    return redirect(reverse("portal:tickets") + (f"?{query}" if query else ""))


# The service's name of a refused field, and the form's.
FIELD_OF = {"files": "attachments"}


def add_errors(form: Any, error: InvalidInput) -> None:
    """A service's refusal, beside the field it is about (the attachments), or above the form."""
    for name, problems in error.errors.items():
        field = FIELD_OF.get(name, name)
        for problem in problems:
            form.add_error(field if field in form.fields else None, problem)
