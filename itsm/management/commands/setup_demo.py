"""First start of `make run`: an admin login and demo data, created once and printed once."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from itsm.models import Team
from itsm.services.sla import sla_policy_default
from itsm.services.users import roles_ensure, user_upsert


class Command(BaseCommand):
    help = "On an empty database: create an admin, an agent and a requester with printed passwords, and demo data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tickets", type=int, default=200)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["tickets"] < 0:
            raise CommandError("--tickets must be 0 or more.")
        roles_ensure()
        sla_policy_default()
        if get_user_model().objects.exists():
            self.stdout.write("Users exist already: demo setup skipped (the logins were printed on first start).")
            return
        logins = []
        # One transaction: if the demo data fails, no users are left behind, so the next start tries again
        # instead of skipping the setup and never printing the logins.
        with transaction.atomic():
            for username, role in (("admin", "admin"), ("agent", "agent"), ("requester", "requester")):
                password = secrets.token_urlsafe(12)
                user_upsert(
                    username=username,
                    role=role,
                    password=password,
                    email=f"{username}@example.com",
                    check_password=False,
                )
                logins.append((username, role, password))
            call_command("seed_demo", tickets=options["tickets"], seed=42, verbosity=0)
            # The agent works the workplace services' queue, so the admin's "unassigned in my teams" has tickets.
            Team.objects.get(slug="workplace").members.add(get_user_model().objects.get(username="agent"))
        banner = "\n".join(f"  {role:<10} {username:<10} {password}" for username, role, password in logins)
        self.stdout.write(
            self.style.SUCCESS("Demo data created. These logins are shown only once:\n")
            + f"{banner}\n  Admin UI: /admin/   API: /api/v1/   Docs: /api/docs/\n"
        )
