"""Benchmark: mail intake, in messages per second for one worker, against the bare minimum that does the same work.

A Dovecot of its own on loopback holds the messages (four in five new requests from 50 senders, one in five a
reply to an earlier ticket by its thread headers); one process reads the mailbox as the every-minute job does
(`mailbox_poll`: IMAP fetch, parse, the ticket or the comment, the record, the ticket e-mail notices, \\Seen), on a
fresh database. The floor, measured in the same run on the same messages: fetch them over IMAP, parse them with
the standard library and insert one bare ticket row each, nothing else.

    .venv/bin/python -m bench.mail_bench --messages 500 --runs 3     # make bench-mail

It creates (and afterwards drops) the database itsm_bench_mail on the server of --server-url. Needs dovecot-imapd.
"""

from __future__ import annotations

import argparse
import email
import os
import statistics
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2

if TYPE_CHECKING:
    from tests.mail.servers import DovecotMailbox

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
DATABASE = "itsm_bench_mail"
TARGET_PER_SECOND = 50.0


def build(count: int) -> list[bytes]:
    messages = []
    for n in range(count):
        mail = EmailMessage()
        sender = (n - 4 if n % 5 == 4 else n) % 50  # a reply comes from the requester of the ticket it answers
        mail["From"] = f"User {sender} <user{sender}@example.com>"
        mail["To"] = "support@itsm.example.com"
        mail["Message-ID"] = f"<bench-{n}@example.com>"
        if n % 5 == 4:  # a reply to the ticket of the message four before, by its thread headers
            mail["Subject"] = f"Re: Printer {n - 4} jams"
            mail["In-Reply-To"] = f"<bench-{n - 4}@example.com>"
            mail["References"] = f"<bench-{n - 4}@example.com>"
            mail.set_content(f"It still jams.\n\nOn Monday, ITSM wrote:\n> Does printer {n - 4} work now?\n")
        else:
            mail["Subject"] = f"Printer {n} jams"
            mail.set_content(f"Printer {n} jams after every page on floor {n % 7}.\n\nThanks,\nUser {sender}\n")
        messages.append(bytes(mail))
    return messages


def database(server_url: str, *, create: bool) -> str:
    connection = psycopg2.connect(server_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        if create:
            cursor.execute(f'CREATE DATABASE "{DATABASE}"')
    connection.close()
    return server_url.rsplit("/", 1)[0] + f"/{DATABASE}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", default=DEFAULT_SERVER)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = database(args.server_url, create=True)
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="itsm_project.settings",
        ITSM_MAIL_POLL_BATCH=str(args.messages),
        ITSM_MAIL_MAX_TICKETS_PER_SENDER_PER_HOUR=str(args.messages * args.runs),
    )
    os.environ.pop("REDIS_URL", None)  # the local-memory cache and the filesystem broker: no service but PostgreSQL
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from tests.mail.servers import running_dovecot

    try:
        with running_dovecot(tls=False) as dovecot:
            full, floor = [], []
            for run in range(args.runs):
                messages = build(args.messages)
                full.append(measure_intake(dovecot.mailbox(), messages, run))
                floor.append(measure_floor(dovecot.mailbox(), messages))
                print(f"run {run + 1}: intake {full[-1]:.1f} msg/s, floor {floor[-1]:.1f} msg/s", flush=True)
    finally:
        from django.db import connections

        connections.close_all()
        database(args.server_url, create=False)
    intake, bare = statistics.median(full), statistics.median(floor)
    print(f"\n{args.messages} messages per run, {args.runs} runs, one process (medians)\n")
    print("| what | messages/s | vs the floor | target |")
    print("|---|---:|---:|---|")
    verdict = "ok" if intake >= TARGET_PER_SECOND else "MISSED"
    print(f"| mail intake (mailbox_poll) | {intake:.1f} | {intake / bare:.2f} | ≥ {TARGET_PER_SECOND:.0f} {verdict} |")
    print(f"| floor: IMAP fetch, stdlib parse, a bare ticket row | {bare:.1f} | 1.00 | - |")
    return 0 if intake >= TARGET_PER_SECOND else 1


def measure_intake(imap: DovecotMailbox, messages: list[bytes], run: int) -> float:
    from itsm.models import Mailbox
    from itsm.services.mail_polling import mailbox_poll

    for raw in messages:
        imap.deliver(raw)
    os.environ["BENCH_MAILBOX_PASSWORD"] = imap.password
    mailbox = Mailbox.objects.create(
        name=f"bench-{run}",
        host="127.0.0.1",
        port=imap.server.port,
        security="plain",
        username=imap.username,
        password_env="BENCH_MAILBOX_PASSWORD",  # noqa: S106 (the name of a variable, not a password)
    )
    started = time.perf_counter()
    counts = mailbox_poll(mailbox_id=mailbox.pk)
    elapsed = time.perf_counter() - started
    done = counts["new_tickets"] + counts["replies"]
    assert counts["received"] == len(messages) == done, counts
    assert counts["replies"] == len(messages) // 5, counts
    return len(messages) / elapsed


def measure_floor(imap: DovecotMailbox, messages: list[bytes]) -> float:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from itsm.mail.imap import ImapMailbox
    from itsm.models import Ticket

    for raw in messages:
        imap.deliver(raw)
    requester, _ = get_user_model().objects.get_or_create(username="bench-floor")
    started = time.perf_counter()
    with ImapMailbox(imap.config) as box:
        for uid in box.uids_after(0, limit=len(messages)):
            for fetched in box.fetch([uid]):
                parsed = email.message_from_bytes(fetched.raw)
                now = timezone.now()
                Ticket.objects.create(
                    title=str(parsed["Subject"])[:200], requester=requester, created_at=now, updated_at=now
                )
                box.mark_seen(uid)
    return len(messages) / (time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
