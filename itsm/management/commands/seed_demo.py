"""Realistic demo data: teams, services, agents, requesters and tickets with comments and history."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

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
PATHS = {
    "new": [],
    "open": ["open"],
    "in_progress": ["open", "in_progress"],
    "pending": ["open", "in_progress", "pending"],
    "resolved": ["open", "in_progress", "resolved"],
    "closed": ["open", "in_progress", "resolved", "closed"],
}
PRIORITY_WEIGHTS = {"critical": 3, "high": 17, "medium": 55, "low": 25}


class Command(BaseCommand):
    help = "Create demo teams, services, users and N tickets (with comments and events)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tickets", type=int, default=200)
        parser.add_argument("--days", type=int, default=90, help="Spread tickets over this many past days.")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for repeatable data.")
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["tickets"] < 0 or options["days"] < 1 or options["batch_size"] < 1:
            raise CommandError("--tickets must be 0 or more, --days and --batch-size at least 1.")
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
        self.stdout.write(self.style.SUCCESS(f"Seeded {made} tickets across {len(services)} services."))

    def _catalog(self, rng: random.Random) -> tuple[list[Service], list[Any], list[Any]]:
        groups = roles_ensure()
        user_model = get_user_model()
        services = []
        for team_name, entries in SERVICES.items():
            team, _ = Team.objects.get_or_create(slug=team_name, defaults={"name": team_name.title()})
            for name, slug in entries:
                service, _ = Service.objects.get_or_create(
                    slug=slug, defaults={"name": name, "team": team, "description": f"The {name} service."}
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
            created = now - timedelta(minutes=rng.randint(5, days * 24 * 60))
            history = [(created, "new")]
            moment = created
            for status in PATHS[final]:
                moment = min(moment + timedelta(minutes=rng.randint(5, 3 * 24 * 60)), now)
                history.append((moment, status))
            agent = rng.choice(agents) if final != "new" else None
            ticket = Ticket(
                title=template.format(s=service.name),
                description=f"Reported by phone. Affects the {service.name} service for my team.",
                status=final,
                priority=rng.choices(list(PRIORITY_WEIGHTS), weights=list(PRIORITY_WEIGHTS.values()))[0],
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
            )
            times = ticket_sla_times(ticket=ticket, policy=policy, calendar=calendar, changes=history)
            ticket.response_due_at, ticket.resolution_due_at = times.response_due_at, times.resolution_due_at
            ticket.sla_at_risk_at = times.at_risk_at
            ticket.sla_status = sla_status_at(ticket, now)
            tickets.append(ticket)
            histories.append((history, agent))
        Ticket.objects.bulk_create(tickets)
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
        Comment.objects.bulk_create(comments)
