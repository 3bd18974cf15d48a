"""Seed a benchmark database fast: `manage.py migrate`, then users, teams, services, tickets with comments and
events, incidents with their events and alerts, all with COPY, then VACUUM ANALYZE.

    .venv/bin/python -m bench.seed --tickets 1000000 --incidents 100000

Secondary indexes of the big tables are dropped before COPY and recreated from their own definitions afterwards
(the GIN search index included), which is several times faster than maintaining them row by row. Foreign-key
triggers are off during COPY (`session_replication_role = replica`) and every foreign key is checked afterwards
with one anti-join each, so the data respects every constraint of the schema. The sizes are stored as the
database's comment: `--reuse` skips seeding when the database already holds the same sizes.
"""

from __future__ import annotations

import argparse
import io
import os
import queue
import random
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.data import (  # noqa: E402
    CATEGORIES,
    PRIORITIES,
    SERVICE_NAMES,
    SEVERITIES,
    STATUSES_OLD,
    STATUSES_RECENT,
    TARGET_MINUTES,
    TEAM_NAMES,
    TextPool,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/itsm_bench"
BENCH_AGENT = "bench-agent"
# A seeded requester (about tickets / 200 tickets of their own) whom the portal scenarios sign in as.
BENCH_REQUESTER = "requester0"
BENCH_PASSWORD = "bench-agent-password-1"  # noqa: S105 (a throwaway account of a throwaway database)
BIG_TABLES = ("itsm_ticket", "itsm_comment", "itsm_event", "itsm_incident", "itsm_incident_services", "itsm_alert")
CHUNK = 20_000
N = r"\N"
TICKET_PATH = {
    "new": [],
    "open": ["open"],
    "in_progress": ["open", "in_progress"],
    "pending": ["open", "in_progress", "pending"],
    "resolved": ["open", "in_progress", "resolved"],
    "closed": ["open", "in_progress", "resolved", "closed"],
}
INCIDENT_PATH = ["acknowledged", "diagnosing", "mitigating", "resolved", "reviewed"]
RESPONSE_MINUTES = {"critical": 15, "high": 60, "medium": 240, "low": 1440}


_DAYS: dict[int, str] = {}


def ts(epoch: float) -> str:
    """A timestamptz literal for COPY; ~4x faster than datetime.isoformat, which dominated the seeding time."""
    day, seconds = divmod(int(epoch), 86400)
    text = _DAYS.get(day)
    if text is None:
        text = _DAYS[day] = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
    hours, rest = divmod(seconds, 3600)
    return f"{text} {hours:02d}:{rest // 60:02d}:{rest % 60:02d}+00"


def sizes_comment(tickets: int, incidents: int) -> str:
    return f"itsm bench seed v1: tickets={tickets} incidents={incidents}"


def server_url(url: str, database: str = "postgres") -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


class Seeder:
    def __init__(self, url: str, tickets: int, incidents: int, seed: int = 42) -> None:
        self.url, self.tickets, self.incidents = url, tickets, incidents
        self.rng = random.Random(seed)
        self.text = TextPool(self.rng)
        self.now = time.time() - 3600
        self.span = 3 * 365 * 86400.0
        self.conn = psycopg2.connect(url)
        self.conn.autocommit = True
        self.cursor = self.conn.cursor()
        self.cursor.execute("SET statement_timeout = 0; SET maintenance_work_mem = '256MB'")
        self.jobs: queue.Queue[tuple[str, str, str] | None] = queue.Queue(maxsize=3)
        self.failure: Exception | None = None
        threading.Thread(target=self._copier, daemon=True).start()
        self.progress = tqdm(total=tickets + incidents, unit=" rows", unit_scale=True, desc="tickets+incidents")

    # --- plumbing ----------------------------------------------------------------------------------------------
    def copy(self, table: str, columns: str, rows: list[str]) -> None:
        """Queue one COPY; a second thread sends it while this one generates the next chunk."""
        if rows:
            self.jobs.put((table, columns, "".join(rows)))

    def _copier(self) -> None:
        while (job := self.jobs.get()) is not None:
            table, columns, data = job
            try:
                self.cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", io.StringIO(data), size=1 << 20)
            except Exception as exc:  # reported by flush(), in the main thread
                self.failure = exc
            self.jobs.task_done()
        self.jobs.task_done()

    def flush(self) -> None:
        self.jobs.join()
        if self.failure is not None:
            raise self.failure

    def scalar(self, sql: str, params: Any = None) -> Any:
        self.cursor.execute(sql, params)
        return self.cursor.fetchone()[0]

    def secondary_indexes(self) -> list[tuple[str, str]]:
        self.cursor.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = ANY(%s::regclass[]) AND NOT x.indisprimary AND NOT x.indisunique",
            [list(BIG_TABLES)],
        )
        return list(self.cursor.fetchall())

    # --- people and catalogue -------------------------------------------------------------------------------
    def people(self) -> None:
        start = self.scalar("SELECT COALESCE(max(id), 0) FROM auth_user") + 1
        requesters = max(100, self.tickets // 200)
        agents, admins = 60, 2
        self.cursor.execute("SELECT name, id FROM auth_group")
        groups = dict(self.cursor.fetchall())
        rows, memberships = [], []
        joined = ts(self.now - self.span)
        for number in range(requesters + agents + admins):
            uid = start + number
            role = "requester" if number < requesters else "agent" if number < requesters + agents else "admin"
            staff = "t" if role != "requester" else "f"
            superuser = "t" if role == "admin" else "f"
            name = f"{role}{number}"
            rows.append(f"{uid}\t!\t{superuser}\t{name}\t\t\t{name}@example.com\t{staff}\tt\t{joined}\n")
            memberships.append(f"{uid}\t{groups[role]}\n")
        self.copy(
            "auth_user",
            "id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined",
            rows,
        )
        self.copy("auth_user_groups", "user_id, group_id", memberships)
        self.flush()
        self.requester_ids = list(range(start, start + requesters))
        self.agent_ids = list(range(start + requesters, start + requesters + agents))
        teams = []
        for name in TEAM_NAMES:
            self.cursor.execute(
                "INSERT INTO itsm_team (name, slug, version) VALUES (%s, %s, 1) RETURNING id", [name, name.lower()]
            )
            teams.append(self.cursor.fetchone()[0])
        self.copy(
            "itsm_team_members",
            "team_id, user_id",
            [f"{teams[i % len(teams)]}\t{uid}\n" for i, uid in enumerate(self.agent_ids)],
        )
        self.flush()
        self.service_ids: list[int] = []
        self.service_slugs: dict[int, str] = {}
        for i, name in enumerate(SERVICE_NAMES):
            slug = name.lower().replace("/", "-").replace(" ", "-")
            self.cursor.execute(
                "INSERT INTO itsm_service (name, slug, description, team_id, auto_resolve_incidents, version) "
                "VALUES (%s, %s, %s, %s, %s, 1) RETURNING id",
                [name, slug, f"The {name} service.", teams[i % len(teams)], i % 3 == 0],
            )
            self.service_ids.append(self.cursor.fetchone()[0])
            self.service_slugs[self.service_ids[-1]] = slug

    # --- tickets ------------------------------------------------------------------------------------------------
    def ticket_rows(self, first: int, count: int, ids: dict[str, int]) -> tuple[list[str], list[str], list[str]]:
        rng, text, now = self.rng, self.text, self.now
        tickets: list[str] = []
        comments: list[str] = []
        events: list[str] = []
        for number in range(first, first + count):
            tid = ids["ticket"] + number
            created = now - self.span * (1 - number / self.tickets) + rng.random() * 60
            recent = number > self.tickets * 0.97
            status = rng.choice(STATUSES_RECENT if recent else STATUSES_OLD)
            priority = rng.choice(PRIORITIES)
            respond, resolve = TARGET_MINUTES[priority]
            requester = rng.choice(self.requester_ids)
            assignee = rng.choice(self.agent_ids) if status != "new" or rng.random() < 0.3 else None
            title = rng.choice(text.titles)
            moments = sorted(created + rng.random() * min(resolve * 90, now - created) for _ in TICKET_PATH[status])
            stamp = dict(zip(TICKET_PATH[status], moments, strict=True))
            first_response = stamp.get("open")
            resolved = stamp.get("resolved")
            closed = stamp.get("closed")
            if status == "closed" and resolved is None:
                resolved = closed
            done = status in ("resolved", "closed")
            resolution_due = created + resolve * 60
            if done:
                sla = "met" if rng.random() < 0.92 else "breached"
            elif status == "pending":
                sla = "paused"
            else:
                sla = "breached" if resolution_due < now else "ok"
            at_risk = ts(created + resolve * 48) if sla == "ok" else N
            ncomments = rng.choice((0, 1, 1, 2, 3)) if status != "new" else rng.choice((0, 0, 1))
            updated = max([created, *moments])
            tickets.append(
                f"{tid}\t{title}\t{rng.choice(text.descriptions)}\t{status}\t{priority}\t{rng.choice(CATEGORIES)}\t"
                f"{rng.choice(self.service_ids)}\t{requester}\t{assignee or N}\t{ts(created)}\t{ts(updated)}\t"
                f"{ts(first_response) if first_response else N}\t{ts(resolved) if resolved else N}\t"
                f"{ts(closed) if closed else N}\t{ts(created + respond * 60)}\t{ts(resolution_due)}\t{at_risk}\t"
                f"{sla}\t{1 + len(moments) + ncomments}\n"
            )
            events.append(f"{ids['event']}\t{tid}\t{N}\t{requester}\tcreated\t\t\t{title}\t\t{ts(created)}\n")
            ids["event"] += 1
            previous = "new"
            for state, moment in stamp.items():
                actor = assignee or requester
                events.append(
                    f"{ids['event']}\t{tid}\t{N}\t{actor}\ttransition\tstatus\t{previous}\t{state}\t\t{ts(moment)}\n"
                )
                ids["event"] += 1
                previous = state
            for _ in range(ncomments):
                staff = assignee is not None and rng.random() < 0.6
                author = assignee if staff else requester
                internal = staff and rng.random() < 0.25
                at = ts(created + rng.random() * max(updated - created, 60))
                cid = ids["comment"]
                ids["comment"] += 1
                comments.append(
                    f"{cid}\t{tid}\t{author}\t{rng.choice(text.comments)}\t{'t' if internal else 'f'}\t{at}\n"
                )
                field = "internal_comment" if internal else "comment"
                events.append(f"{ids['event']}\t{tid}\t{N}\t{author}\tcomment\t{field}\t\t{cid}\t\t{at}\n")
                ids["event"] += 1
        return tickets, comments, events

    def seed_tickets(self, ids: dict[str, int]) -> None:
        for first in range(0, self.tickets, CHUNK):
            count = min(CHUNK, self.tickets - first)
            tickets, comments, events = self.ticket_rows(first, count, ids)
            self.copy(
                "itsm_ticket",
                "id, title, description, status, priority, category, service_id, requester_id, assignee_id, "
                "created_at, updated_at, first_response_at, resolved_at, closed_at, response_due_at, "
                "resolution_due_at, sla_at_risk_at, sla_status, version",
                tickets,
            )
            self.copy("itsm_comment", "id, ticket_id, author_id, body, internal, created_at", comments)
            self.copy_events(events)
            self.progress.update(count)

    def copy_events(self, events: list[str]) -> None:
        self.copy(
            "itsm_event",
            "id, ticket_id, incident_id, actor_id, kind, field, old_value, new_value, note, created_at",
            events,
        )

    # --- incidents ----------------------------------------------------------------------------------------------
    def seed_incidents(self, ids: dict[str, int]) -> None:
        rng, text = self.rng, self.text
        slugs = self.service_slugs
        for first in range(0, self.incidents, CHUNK):
            count = min(CHUNK, self.incidents - first)
            incidents, links, events, alerts = [], [], [], []
            for number in range(first, first + count):
                iid = ids["incident"] + number
                detected = self.now - self.span * (1 - number / self.incidents) + rng.random() * 600
                severity = rng.choice(SEVERITIES)
                if number > self.incidents * 0.995:
                    steps = rng.randrange(0, 4)
                else:
                    # critical and high incidents are closed as reviewed only with a final post-mortem
                    steps = 5 if severity in ("medium", "low") and rng.random() < 0.7 else 4
                path = INCIDENT_PATH[:steps]
                status = path[-1] if path else "detected"
                moments = [detected + (i + 1) * rng.randrange(60, 3600) for i in range(len(path))]
                stamp = dict(zip(path, moments, strict=True))
                source = "alertmanager" if rng.random() < 0.4 else "manual"
                commander = rng.choice(self.agent_ids) if path else None
                due = detected + RESPONSE_MINUTES[severity] * 60
                missed = "t" if path and stamp["acknowledged"] > due else "f"
                title = rng.choice(text.titles)
                cols = [ts(stamp[s]) if s in stamp else N for s in INCIDENT_PATH]
                updated = max([detected, *moments])
                incidents.append(
                    f"{iid}\t{title}\t{rng.choice(text.descriptions)}\t{severity}\t{status}\t{source}\t"
                    f"{commander or N}\t{rng.choice(self.agent_ids) if source == 'manual' else N}\t{ts(detected)}\t"
                    + "\t".join(cols)
                    + f"\t{ts(due)}\t{missed}\t{f'seed:{iid}' if source == 'alertmanager' else N}\t0\t{N}\t"
                    f"{ts(updated)}\tf\t\t1\n"  # private, as every incident starts; version 1
                )
                services = rng.sample(self.service_ids, rng.choice((1, 1, 2)))
                links += [f"{iid}\t{sid}\n" for sid in services]
                events.append(
                    f"{ids['event']}\t{N}\t{iid}\t{N}\tcreated\tseverity\t\t{severity}\t{title}\t{ts(detected)}\n"
                )
                ids["event"] += 1
                previous = "detected"
                for state, moment in stamp.items():
                    events.append(
                        f"{ids['event']}\t{N}\t{iid}\t{commander}\ttransition\tstatus\t{previous}\t{state}\t\t"
                        f"{ts(moment)}\n"
                    )
                    ids["event"] += 1
                    previous = state
                if source == "alertmanager":
                    labels = (
                        f'{{"alertname": "HighErrorRate", "service": "{slugs[services[0]]}", "severity": "warning"}}'
                    )
                    alert_status = "resolved" if status in ("resolved", "reviewed") else "firing"
                    alerts.append(
                        f"{iid}\tseed{iid:012x}\t{alert_status}\tHighErrorRate\twarning\t{labels}\t{{}}\t"
                        f"{ts(detected)}\t{ts(stamp['resolved']) if 'resolved' in stamp else N}\t\tseed:{iid}\t"
                        f"{services[0]}\t{iid}\t{ts(detected)}\t{ts(updated)}\t1\n"
                    )
            self.copy(
                "itsm_incident",
                "id, title, summary, severity, status, source, commander_id, created_by_id, detected_at, "
                "acknowledged_at, diagnosing_at, mitigating_at, resolved_at, reviewed_at, response_due_at, "
                "response_target_missed, group_key, escalation_level, next_escalation_at, updated_at, public, "
                "public_title, version",
                incidents,
            )
            self.copy("itsm_incident_services", "incident_id, service_id", links)
            self.copy_events(events)
            self.copy(
                "itsm_alert",
                "id, fingerprint, status, alertname, severity, labels, annotations, starts_at, ends_at, "
                "generator_url, group_key, service_id, incident_id, received_at, last_received_at, receive_count",
                alerts,
            )
            self.progress.update(count)

    # --- checks -------------------------------------------------------------------------------------------------
    def check_foreign_keys(self) -> None:
        """Every foreign key of the seeded tables points at an existing row (COPY ran without FK triggers)."""
        self.cursor.execute(
            "SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, af.attname "
            "FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1] "
            "WHERE c.contype = 'f' AND c.conrelid = ANY(%s::regclass[])",
            [[*BIG_TABLES, "auth_user_groups", "itsm_team_members"]],
        )
        for table, column, parent, key in self.cursor.fetchall():
            orphans = self.scalar(
                f"SELECT count(*) FROM {table} c WHERE c.{column} IS NOT NULL "  # noqa: S608 (catalogue names)
                f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{key} = c.{column})"
            )
            if orphans:
                raise SystemExit(f"seed bug: {orphans} rows of {table}.{column} point nowhere in {parent}")

    def run(self) -> None:
        started = time.perf_counter()
        self.cursor.execute("SET session_replication_role = replica")
        self.people()
        indexes = self.secondary_indexes()
        for name, _ in indexes:
            self.cursor.execute(f'DROP INDEX "{name}"')
        ids = {
            table: self.scalar(f"SELECT COALESCE(max(id), 0) + 1 FROM itsm_{table}")  # noqa: S608
            for table in ("ticket", "comment", "event", "incident")
        }
        self.seed_tickets(ids)
        self.seed_incidents(ids)
        self.flush()
        self.progress.close()
        self.cursor.execute("SET session_replication_role = origin")
        for _name, definition in tqdm(indexes, desc="indexes", unit=" index"):
            self.cursor.execute(definition)
        for table in (*BIG_TABLES, "auth_user", "auth_user_groups", "itsm_team", "itsm_service"):
            self.cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(max(id), 1) FROM {table}))"  # noqa: S608
            )
        self.check_foreign_keys()
        print("VACUUM ANALYZE ...", flush=True)
        self.cursor.execute("VACUUM ANALYZE")
        counts = {t: self.scalar(f"SELECT count(*) FROM {t}") for t in BIG_TABLES}  # noqa: S608
        size = self.scalar("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(f"seeded in {time.perf_counter() - started:.0f} s, database {size}: {counts}", flush=True)


def prepare_database(url: str, tickets: int, incidents: int, reuse: bool) -> bool:
    """Create the database (dropping an old one) unless `reuse` and it already holds these sizes. True: seed it."""
    name = database_name(url)
    maintenance = psycopg2.connect(server_url(url))
    maintenance.autocommit = True
    with maintenance.cursor() as cursor:
        cursor.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name])
        row = cursor.fetchone()
        if reuse and row is not None and row[0] == sizes_comment(tickets, incidents):
            print(f"reusing database {name} ({row[0]})", flush=True)
            maintenance.close()
            return False
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    maintenance.close()
    return True


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["ITSM_DB_STATEMENT_TIMEOUT_MS"] = "0"
    import django

    django.setup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true", help="Keep a database already seeded with these sizes.")
    args = parser.parse_args(argv)
    seed(args.database_url, args.tickets, args.incidents, reuse=args.reuse)
    return 0


def seed(url: str, tickets: int, incidents: int, *, reuse: bool = False) -> None:
    fresh = prepare_database(url, tickets, incidents, reuse)
    setup_django(url)
    from django.core.management import call_command

    from itsm.services.sla import sla_policy_default
    from itsm.services.users import user_upsert

    call_command("migrate", interactive=False, verbosity=0)
    if fresh:
        Seeder(url, tickets, incidents).run()
        psycopg2_comment(url, sizes_comment(tickets, incidents))
    # The accounts the load generator signs in with, and the SLA policy every new ticket reads.
    user_upsert(username=BENCH_AGENT, role="agent", password=BENCH_PASSWORD, check_password=False)
    user_upsert(username=BENCH_REQUESTER, role="requester", password=BENCH_PASSWORD, check_password=False)
    sla_policy_default()


def psycopg2_comment(url: str, comment: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'COMMENT ON DATABASE "{database_name(url)}" IS %s', [comment])
    conn.close()


if __name__ == "__main__":
    sys.exit(main())
