"""`python manage.py read_only_mode on|off|status`: the API's read-only mode (writes answered with 503).
`restore` turns it on and off by itself; this command is for maintenance by hand and for recovering after a
restore process was killed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from itsm.services.readonly import read_only_enter, read_only_leave, read_only_state


class Command(BaseCommand):
    help = "Turn the API's read-only mode on or off, or show it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["on", "off", "status"])
        parser.add_argument("--reason", default="maintenance", help="Shown to API clients in the 503 answer.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "on":
            read_only_enter(reason=options["reason"])
        elif options["action"] == "off":
            read_only_leave()
        state = read_only_state()
        if state is None:
            self.stdout.write("read-only mode is off")
        else:
            self.stdout.write(f"read-only mode is on since {state.get('since')}: {state.get('reason')}")
