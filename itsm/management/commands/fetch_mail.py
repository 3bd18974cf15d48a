"""`python manage.py fetch_mail`: read every enabled mailbox once, as the every-minute job does, and say what came
of it. Exits 1 when a mailbox could not be read, so a cron job or an operator sees it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from itsm.models import Mailbox
from itsm.services.mail_polling import mailbox_poll, mailboxes_poll


class Command(BaseCommand):
    help = "Read the mailboxes once: new mail opens tickets, replies thread into them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailbox", help="Only the mailbox of this name.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["mailbox"]:
            mailbox = Mailbox.objects.filter(name=options["mailbox"]).first()
            if mailbox is None:
                names = ", ".join(Mailbox.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"There is no mailbox {options['mailbox']!r} (mailboxes: {names}).")
            results = {mailbox.name: mailbox_poll(mailbox_id=mailbox.pk)}
        else:
            results = mailboxes_poll()["mailboxes"]
        if not results:
            self.stdout.write(
                "Mail intake is off: no mailbox is enabled. Set ITSM_MAIL_INBOX_URL or add one in the admin."
            )
            return
        failed = []
        for name, counts in results.items():
            if "error" in counts:
                failed.append(name)
                self.stderr.write(f"{name}: could not be read: {counts['error']}")
                continue
            self.stdout.write(
                f"{name}: received {counts['received']}, new tickets {counts['new_tickets']}, "
                f"replies threaded {counts['replies']}, ignored {counts['ignored']}, refused {counts['refused']}, "
                f"failed {counts['failed']}, done before {counts['done_before']}"
            )
        if failed:
            raise CommandError(f"{len(failed)} mailbox(es) could not be read: {', '.join(failed)}.")
