"""Realistic demo data: teams, services, agents, requesters and tickets with comments and history."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from tqdm import tqdm

from itsm.audit import audited_bulk_create
from itsm.models import Comment, Event, Service, Team, Ticket
from itsm.roles import Role
from itsm.services.sla import calendar_from, sla_policy_default, sla_status_at, ticket_sla_times
from itsm.services.users import roles_ensure

SERVICES = {
    "platform": [("API", "api"), ("Database", "database"), ("Cache", "cache"), ("Workers", "workers")],
    "workplace": [("E-mail", "email"), ("VPN", "vpn"), ("Laptops", "laptops"), ("Printing", "printing")],
}
PROBLEMS = [
    ("Cannot log in to {s}", "access"),
    ("{s} is slow since this morning", "performance"),
    ("Error 500 when saving in {s}", "bug"),
    ("Request access to {s}", "access"),
    ("{s} keeps disconnecting", "outage"),
    ("Question about {s} quotas", "question"),
    ("{s} shows stale data", "bug"),
]
# Where tickets end up, roughly as on a real desk: most are done, a working set is open.
STATUS_WEIGHTS = {"new": 8, "open": 10, "in_progress": 12, "pending": 5, "resolved": 15, "closed": 50}
# The share of tickets that miss a target, and of finished tickets that waited on their requester on the way.
BREACH_SHARE = 0.15
PENDING_DETOUR_SHARE = 0.2
PRIORITY_WEIGHTS = {"critical": 3, "high": 17, "medium": 55, "low": 25}


class Command(BaseCommand):
    help = "Create demo teams, services, users and N tickets (with comments and events)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tickets", type=int, default=200)
        parser.add_argument("--days", type=int, default=90, help="Spread tickets over this many past days.")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for repeatable data.")
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args: Any, **options: Any) -> None:
        problems = [
            f"--{name.replace('_', '-')} must be {least} or more (got {options[name]})."
            for name, least in (("tickets", 0), ("days", 1), ("batch_size", 1))
            if options[name] < least
        ]
        if problems:
            raise CommandError(" ".join(problems))
        rng = random.Random(options["seed"])
        with transaction.atomic():
            services, agents, requesters = self._catalog(rng)
        policy = sla_policy_default()
        calendar = calendar_from(policy.calendar)
        now = timezone.now()
        made = 0
        with tqdm(total=options["tickets"], unit="ticket", disable=options["verbosity"] == 0) as bar:
            while made < options["tickets"]:
                size = min(options["batch_size"], options["tickets"] - made)
                with transaction.atomic():
                    self._batch(rng, size, now, options["days"], services, agents, requesters, policy, calendar)
                made += size
                bar.update(size)
        if options["verbosity"] > 0:
            self.stdout.write(self.style.SUCCESS(f"Seeded {made} tickets across {len(services)} services."))

    def _catalog(self, rng: random.Random) -> tuple[list[Service], list[Any], list[Any]]:
        groups = roles_ensure()
        user_model = get_user_model()
        services = []
        for team_name, entries in SERVICES.items():
            # Matched by slug or by name: an operator may have renamed one, and both are unique.
            team = Team.objects.filter(Q(slug=team_name) | Q(name=team_name.title())).first()
            if team is None:
                team = Team.objects.create(slug=team_name, name=team_name.title())
            for name, slug in entries:
                service = Service.objects.filter(Q(slug=slug) | Q(name=name)).first()
                if service is None:
                    service = Service.objects.create(
                        slug=slug, name=name, team=team, description=f"The {name} service."
                    )
                services.append(service)
        agents: list[Any] = []
        requesters: list[Any] = []
        for prefix, count, role, bucket in (("agent", 6, Role.AGENT, agents), ("user", 40, Role.REQUESTER, requesters)):
            for number in range(1, count + 1):
                user, created = user_model.objects.get_or_create(
                    username=f"demo-{prefix}{number}", defaults={"email": f"{prefix}{number}@example.com"}
                )
                if created:
                    user.set_unusable_password()
                    user.is_staff = role == Role.AGENT
                    user.save()
                    user.groups.add(groups[role])
                bucket.append(user)
        return services, agents, requesters

    def _batch(
        self,
        rng: random.Random,
        size: int,
        now: datetime,
        days: int,
        services: list[Service],
        agents: list[Any],
        requesters: list[Any],
        policy: Any,
        calendar: Any,
    ) -> None:
        tickets, histories = [], []
        for _ in range(size):
            service = rng.choice(services)
            template, category = rng.choice(PROBLEMS)
            final = rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
            priority = rng.choices(list(PRIORITY_WEIGHTS), weights=list(PRIORITY_WEIGHTS.values()))[0]
            offsets, age = _status_offsets(rng, final, *policy.targets_for(priority), days=days)
            created = now - timedelta(minutes=age)
            history = [(created + timedelta(minutes=offset), status) for offset, status in offsets]
            agent = rng.choice(agents) if final != "new" else None
            ticket = Ticket(
                title=template.format(s=service.name),
                description=f"Reported by phone. Affects the {service.name} service for my team.",
                status=final,
                priority=priority,
                category=category,
                service=service,
                requester=rng.choice(requesters),
                assignee=agent,
                created_at=created,
                updated_at=history[-1][0],
                first_response_at=history[1][0] if len(history) > 1 else None,
                resolved_at=next(
                    (t for t, s in history if s == "resolved"), history[-1][0] if final == "closed" else None
                ),
                closed_at=history[-1][0] if final == "closed" else None,
                sla_policy=policy,
            )
            times = ticket_sla_times(ticket=ticket, policy=policy, calendar=calendar, changes=history)
            ticket.response_due_at, ticket.resolution_due_at = times.response_due_at, times.resolution_due_at
            ticket.sla_at_risk_at = times.at_risk_at
            ticket.sla_status = sla_status_at(ticket, now)
            tickets.append(ticket)
            histories.append((history, agent))
        audited_bulk_create(tickets)
        events, comments = [], []
        for ticket, (history, agent) in zip(tickets, histories, strict=True):
            events.append(
                Event(
                    ticket=ticket,
                    actor=ticket.requester,
                    kind="created",
                    new_value=ticket.title,
                    created_at=history[0][0],
                )
            )
            previous = "new"
            for when, status in history[1:]:
                events.append(
                    Event(
                        ticket=ticket,
                        actor=agent,
                        kind="transition",
                        field="status",
                        old_value=previous,
                        new_value=status,
                        created_at=when,
                    )
                )
                previous = status
            breached_at = _breached_at(ticket, now)
            if breached_at is not None:
                events.append(
                    Event(
                        ticket=ticket,
                        kind="sla",
                        field="sla_status",
                        old_value="ok",
                        new_value="breached",
                        created_at=breached_at,
                    )
                )
            if ticket.first_response_at:
                comments.append(
                    Comment(
                        ticket=ticket,
                        author=agent,
                        body="Thanks, we are looking into it.",
                        created_at=ticket.first_response_at,
                    )
                )
        Event.objects.bulk_create(events)
        audited_bulk_create(comments)


def _status_offsets(
    rng: random.Random, final: str, response_minutes: int, resolution_minutes: int, *, days: int
) -> tuple[list[tuple[float, str]], float]:
    """Minutes after creation of each status change on the way to `final`, and the ticket's age now in minutes.

    Durations are drawn as fractions of the priority's targets, as on a desk that mostly keeps them: about
    BREACH_SHARE of the tickets miss one (the first response or the resolution) by a margin. The SLA clock stops
    while a ticket is pending, so a spell of waiting moves the wall clock but no due time.
    """
    missed = rng.choice(["response", "resolution"]) if rng.random() < BREACH_SHARE else None
    if final == "new" and missed:
        missed = "response"
    response = response_minutes * (rng.uniform(1.2, 3.0) if missed == "response" else rng.uniform(0.05, 0.9))
    resolution = resolution_minutes * (rng.uniform(1.1, 2.0) if missed == "resolution" else rng.uniform(0.2, 0.95))
    resolution = max(resolution, response + rng.uniform(5, 60))
    offsets = [(0.0, "new")]
    if final == "new":
        return offsets, response
    offsets.append((response, "open"))
    if final == "open":
        return offsets, resolution
    working = response + (resolution - response) * rng.uniform(0.05, 0.5)
    offsets.append((working, "in_progress"))
    if final == "in_progress":
        return offsets, resolution
    waiting = working + (resolution - working) * rng.uniform(0.1, 0.9)
    if final == "pending":
        offsets.append((waiting, "pending"))
        return offsets, waiting + rng.uniform(30, 3 * 24 * 60)
    pause = 0.0
    if rng.random() < PENDING_DETOUR_SHARE:
        pause = rng.uniform(30, 2 * 24 * 60)
        offsets += [(waiting, "pending"), (waiting + pause, "in_progress")]
    resolved = resolution + pause
    offsets.append((resolved, "resolved"))
    if final == "resolved":
        return offsets, resolved + rng.uniform(10, 3 * 24 * 60)
    closed = resolved + rng.uniform(60, 3 * 24 * 60)
    offsets.append((closed, "closed"))
    # Closed tickets make up the history: spread them over the whole period.
    return offsets, max(closed + rng.uniform(0, 60), rng.uniform(0, days * 24 * 60))


def _breached_at(ticket: Ticket, now: datetime) -> datetime | None:
    """When the ticket first missed a target, for the SLA event the scan would have written."""
    if ticket.sla_status != Ticket.SlaStatus.BREACHED:
        return None
    missed = []
    if ticket.response_due_at is not None and (ticket.first_response_at or now) > ticket.response_due_at:
        missed.append(ticket.response_due_at)
    resolution_end = ticket.resolved_at or now
    if ticket.resolution_due_at is not None and resolution_end > ticket.resolution_due_at:
        missed.append(ticket.resolution_due_at)
    return min(missed, default=None)
