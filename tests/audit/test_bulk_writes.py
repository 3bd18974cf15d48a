"""Writes that send no model signal leave nothing in the audit trail by themselves: `QuerySet.update()`,
`bulk_create()` and `bulk_update()`. Each one in itsm/ on a recorded model goes through `itsm.audit.audited_update`
or `audited_bulk_create`, writes only fields the trail leaves out (RECORDED's `exclude_fields`, with their reason),
or is listed below with the reason it is not recorded. `QuerySet.delete()` needs no helper: Django deletes the rows
of a model with delete receivers one by one, sending their signals (checked below too)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import DateTimeField, F, Model, Value
from django.db.models.deletion import Collector
from django.db.models.functions import Coalesce
from django.utils import timezone

from itsm.audit import RECORDED, audit_context, audited_update
from itsm.models import AlertRule, Backup, Comment, MaintenanceWindow, Ticket
from itsm.services.incidents import incident_create
from itsm.services.integrations import integration_token_check, integration_token_issue, integration_token_revoke
from itsm.services.maintenance import maintenance_create
from itsm.tasks.maintenance import run_maintenance_windows
from itsm.tasks.paging import escalate_incidents
from tests.factories import ServiceFactory, TeamFactory, make_ticket

ROOT = Path(__file__).resolve().parents[2]
SIGNAL_LESS = {"update", "bulk_create", "bulk_update"}
MANAGERS = {"objects", "_default_manager", "_base_manager"}
# Calls that keep a queryset a queryset: a chain with one of these before `.update(` is a queryset's update.
QUERYSET_METHODS = {
    "all",
    "filter",
    "exclude",
    "select_for_update",
    "select_related",
    "prefetch_related",
    "order_by",
    "only",
    "defer",
    "using",
    "distinct",
    "annotate",
    "alias",
    "none",
}
UNKNOWN = "?"  # a queryset whose model the source does not name (a variable, a related manager)

ERASURE = (
    "a personal data erasure (docs/security.md#personal-data): a row per change would copy into the trail the "
    "names and addresses it erases; the erasure is one audit row of its own, with counts and no old values"
)

# (file, function, model): why that bulk write on a recorded model is not recorded.
NOT_RECORDED_WRITES = {
    ("itsm/audit.py", "audited_update", UNKNOWN): "the helper itself, which records the rows it updates",
    ("itsm/audit.py", "audited_bulk_create", UNKNOWN): "the helper itself, which records the rows it creates",
    **{
        ("itsm/services/privacy.py", function, model): ERASURE
        for function, model in [
            ("_scrub", UNKNOWN),
            ("_own_rows", "IntegrationToken"),
            ("_own_rows", "NotificationChannel"),
            ("_own_rows", "SuppressedAddress"),
            ("_comments", "Comment"),
            ("_comments", "TicketRating"),
            ("_audit_trail", "AdminLogEntry"),
            ("personal_data_erase", UNKNOWN),
        ]
    },
    ("itsm/services/restore.py", "_merge_catalogue", "Backup"): (
        "a restore puts back the backup catalogue of just before it (newer backups, newer states) into the restored "
        "database, whose audit trail is the backup's; the restore itself is in its command's output and the logs"
    ),
}


@dataclass(frozen=True)
class Site:
    path: str
    function: str
    model: str
    method: str
    line: int
    fields: frozenset[str] | None  # the keywords of an update(), None when not all are named


def models_by_name() -> dict[str, set[type[Model]]]:
    found: dict[str, set[type[Model]]] = {}
    for model in apps.get_models():
        found.setdefault(model.__name__, set()).add(model)
    found.setdefault("User", set()).add(get_user_model())
    return found


def receiver_model(node: ast.expr, assigned: dict[str, ast.expr], querysets: set[str], depth: int = 0) -> str | None:
    """The model named by a queryset expression (`Ticket.objects.filter(...)`, or a variable assigned one), UNKNOWN
    for a queryset whose model the source does not say (an admin action's `queryset`, a related manager), None when
    it is not a queryset."""
    chain: list[str] = []
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            break
    chain.reverse()
    if not isinstance(node, ast.Name):
        return None
    if chain and chain[0] in MANAGERS:
        return node.id if node.id[:1].isupper() else UNKNOWN  # `model._default_manager`: a variable's model
    if node.id in assigned and depth < 5:
        model = receiver_model(assigned[node.id], assigned, querysets, depth + 1)
        if model is not None:
            return model
    if set(chain) & (QUERYSET_METHODS | MANAGERS) or (not chain and node.id in querysets):
        return UNKNOWN
    return None


def sites(root: Path = ROOT / "itsm") -> Iterator[Site]:
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assigned = {
                node.targets[0].id: node.value
                for node in ast.walk(function)
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            }
            querysets = {
                argument.arg
                for argument in [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]
                if argument.arg in ("queryset", "qs")
                or (argument.annotation is not None and "QuerySet" in ast.unparse(argument.annotation))
            }
            for call in ast.walk(function):
                if not (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr in SIGNAL_LESS
                ):
                    continue
                model = receiver_model(call.func.value, assigned, querysets)
                if model is None:
                    continue
                named = all(keyword.arg is not None for keyword in call.keywords)
                yield Site(
                    path=str(path.relative_to(root.parent)),
                    function=function.name,
                    model=model,
                    method=call.func.attr,
                    line=call.lineno,
                    fields=frozenset(str(k.arg) for k in call.keywords) if named else None,
                )


def is_recorded(name: str, known: dict[str, set[type[Model]]]) -> bool:
    """A name the source uses for a model: recorded when any model of that name is (an unknown name may be)."""
    if name not in known:
        return True
    return any(auditlog.contains(model) for model in known[name])


def excluded_only(site: Site, known: dict[str, set[type[Model]]]) -> bool:
    """An update of fields the trail leaves out whether saved or bulk-updated: nothing to record."""
    if site.method != "update" or not site.fields or site.model not in known:
        return False
    return all(site.fields <= set(auditlog.get_model_fields(model)["exclude_fields"]) for model in known[site.model])


def unrecorded(found: list[Site]) -> list[str]:
    known = models_by_name()
    return [
        f"{site.path}:{site.line} {site.function}: {site.model}...{site.method}() writes a recorded model unrecorded"
        for site in found
        if is_recorded(site.model, known)
        and not excluded_only(site, known)
        and (site.path, site.function, site.model) not in NOT_RECORDED_WRITES
    ]


def test_every_bulk_write_on_a_recorded_model_is_recorded_or_left_out_with_a_reason():
    found = list(sites())
    assert len(found) > 20, found  # the scan sees the platform's machine-state writes (jobs, outbox, alerts...)
    assert unrecorded(found) == []


def test_each_write_left_out_is_still_in_the_code_and_has_a_reason():
    keys = {(site.path, site.function, site.model) for site in sites()}
    assert set(NOT_RECORDED_WRITES) <= keys
    assert all(len(reason) > 20 for reason in NOT_RECORDED_WRITES.values())


def test_the_scan_finds_an_unrecorded_update_of_a_recorded_model(tmp_path):
    (tmp_path / "itsm").mkdir()
    (tmp_path / "itsm" / "writes.py").write_text(
        "def close(pk):\n"
        "    Ticket.objects.filter(pk=pk).update(status='closed')\n"
        "    tickets = Ticket.objects.filter(pk=pk)\n"
        "    tickets.update(priority='low')\n"
        "    Ticket.objects.bulk_create([])\n"
        "    IntegrationToken.objects.filter(pk=pk).update(last_used_at=None)\n"  # a left-out field
        "    JobRun.objects.filter(pk=pk).update(status='done')\n"  # a model left out
        "    {}.update(a=1)\n"
        "    audited_update(Ticket.objects.filter(pk=pk), status='closed')\n"
        "def action(modeladmin, request, queryset):\n"
        "    queryset.update(status='closed')\n"
    )
    problems = unrecorded(list(sites(tmp_path / "itsm")))
    assert [problem.split(" ")[0].rsplit(":", 1)[1] for problem in problems] == ["2", "4", "5", "11"], problems


@pytest.mark.parametrize("model", [*RECORDED, get_user_model()], ids=lambda model: model.__name__)
def test_a_querysets_delete_of_a_recorded_model_sends_each_rows_signals(model):
    assert not Collector(using="default").can_fast_delete(model._default_manager.all())


# --- through the real paths ----------------------------------------------------------------------------------------
T0 = datetime(2030, 3, 3, 2, 0, tzinfo=UTC)


def entries_of(instance: Any) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(instance).order_by("id"))


@pytest.mark.django_db
def test_a_recorded_bulk_update_writes_the_row_a_save_would_write(admin):
    saved, updated = (Backup.objects.create(kind="database", created_at=T0) for _ in range(2))
    with audit_context(source="api", actor=admin, detail="POST /api/v1/backups/"):
        saved.status, saved.error = Backup.Status.FAILED, "disk full"
        saved.save(update_fields=["status", "error"])
        assert audited_update(Backup.objects.filter(pk=updated.pk), status=Backup.Status.FAILED, error="disk full") == 1
    by_save, by_update = entries_of(saved)[-1], entries_of(updated)[-1]
    assert by_update.action == by_save.action == LogEntry.Action.UPDATE
    assert by_update.changes == by_save.changes == {"status": ["pending", "failed"], "error": ["", "disk full"]}
    assert by_update.object_repr == f"backup #{updated.pk} database/daily (failed)"
    for field in ("actor", "actor_email", "additional_data", "content_type", "cid"):
        assert getattr(by_update, field) == getattr(by_save, field), field
    assert by_update.additional_data == {"source": "api", "detail": "POST /api/v1/backups/"}


@pytest.mark.django_db
def test_a_compare_and_set_keeps_its_one_winner_and_the_loser_writes_nothing(admin):
    row, _ = integration_token_issue(name="ci", scope="read", created_by=admin)
    with audit_context(source="admin", actor=admin):
        assert integration_token_revoke(row, by=admin) is True
        assert integration_token_revoke(row, by=admin) is False
    (revoked,) = [entry for entry in entries_of(row) if "revoked_at" in (entry.changes or {})]
    assert revoked.changes["revoked_by"] == [None, admin.pk]
    assert revoked.actor == admin
    assert revoked.additional_data["source"] == "admin"


@pytest.mark.django_db
def test_values_written_by_an_expression_are_recorded_as_written_and_a_retry_counter_is_not():
    backup = Backup.objects.create(kind="database", created_at=T0)
    with time_machine.travel(T0, tick=False):
        audited_update(
            Backup.objects.filter(pk=backup.pk),
            started_at=Coalesce(F("started_at"), Value(timezone.now(), output_field=DateTimeField())),
            attempts=F("attempts") + 1,
        )
    (update,) = [entry for entry in entries_of(backup) if entry.action == LogEntry.Action.UPDATE]
    assert update.changes == {"started_at": [None, "2030-03-03 02:00:00"]}


@pytest.mark.django_db
def test_a_token_check_stamping_its_last_use_writes_no_row(admin):
    row, token = integration_token_issue(name="ci", scope="read", created_by=admin)
    before = LogEntry.objects.count()
    assert integration_token_check(token).last_used_at is not None
    row.name = "ci"
    row.last_used_at = timezone.now()
    row.save()  # left out whether saved or bulk-updated
    assert LogEntry.objects.count() == before


@pytest.mark.django_db
def test_a_window_the_scheduler_starts_is_recorded_as_the_tasks_without_its_gate_claim(agent):
    service = ServiceFactory.create()
    with time_machine.travel(T0 - timedelta(days=1), tick=False):
        window = maintenance_create(
            actor=agent,
            title="Kernel update",
            starts_at=T0,
            ends_at=T0 + timedelta(hours=1),
            services=[service],
            backup_required=False,
        )
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        run_maintenance_windows.apply()
    window.refresh_from_db()
    assert window.status == MaintenanceWindow.Status.IN_PROGRESS
    steps = [entry for entry in entries_of(window) if entry.action == LogEntry.Action.UPDATE]
    assert [sorted(entry.changes) for entry in steps] == [["announced_at"], ["started_at", "status", "updated_at"]]
    assert steps[-1].changes["status"] == ["scheduled", "in_progress"]
    assert all("gate_started_at" not in entry.changes for entry in steps)
    assert {entry.additional_data["detail"] for entry in steps} == {"itsm.tasks.maintenance.run_maintenance_windows"}
    assert {entry.additional_data["source"] for entry in steps} == {"task"}


@pytest.mark.django_db
def test_a_missed_response_target_marked_by_the_scan_is_recorded_per_incident():
    with time_machine.travel(T0, tick=False):
        late, other = (
            incident_create(actor=None, title=title, severity="medium", services=[ServiceFactory.create()])
            for title in ("Slow search", "Slow login")
        )
    with time_machine.travel(T0 + timedelta(hours=4), tick=False):
        escalate_incidents.apply()
    for incident in (late, other):
        update = entries_of(incident)[-1]
        assert update.changes == {"response_target_missed": [False, True]}
        assert update.additional_data == {"source": "task", "detail": "itsm.tasks.paging.escalate_incidents"}


@pytest.mark.django_db
def test_seed_demo_records_each_ticket_and_comment_it_creates_as_the_commands():
    call_command("seed_demo", "--tickets", "12", "--seed", "7", stdout=StringIO())
    tickets = LogEntry.objects.get_for_model(Ticket).filter(action=LogEntry.Action.CREATE)
    comments = LogEntry.objects.get_for_model(Comment).filter(action=LogEntry.Action.CREATE)
    assert tickets.count() == Ticket.objects.count() == 12
    assert comments.count() == Comment.objects.count()
    entry = tickets.order_by("id").first()
    assert entry is not None
    ticket = Ticket.objects.get(pk=entry.object_id)
    assert entry.changes["title"] == [None, ticket.title]
    assert "version" not in entry.changes
    assert entry.additional_data["source"] == "command"


@pytest.mark.django_db
def test_keys_a_deletion_sets_to_null_are_recorded_on_the_rows_that_held_them(admin, requester):
    team = TeamFactory.create(name="Platform")
    service, team_id = ServiceFactory.create(team=team), team.pk
    first = make_ticket(requester, title="VPN drops")
    follow_up = make_ticket(requester, title="VPN drops again")
    Ticket.objects.filter(pk=follow_up.pk).update(follow_up_of=first)  # set up outside the trail
    with audit_context(source="admin", actor=admin):
        team.delete()
        Ticket.objects.filter(pk=first.pk).delete()
    (nulled,) = [entry for entry in entries_of(service) if entry.action == LogEntry.Action.UPDATE]
    assert nulled.changes == {"team": [team_id, None]}
    assert (nulled.actor, nulled.additional_data["source"]) == (admin, "admin")
    assert entries_of(follow_up)[-1].changes == {"follow_up_of": [first.pk, None]}


@pytest.mark.django_db
def test_an_alert_rules_evaluation_records_the_state_it_moves_not_each_reading():
    rule = AlertRule.objects.create(name="disk", probe="promql", expression="x", threshold=90)
    for minute, value in enumerate((50.0, 95.0, 96.0)):
        rule.last_value, rule.last_evaluated_at = value, T0 + timedelta(minutes=minute)
        if value > rule.threshold:
            rule.state = AlertRule.State.PENDING
        rule.save()
    updates = [entry.changes for entry in entries_of(rule) if entry.action == LogEntry.Action.UPDATE]
    assert updates == [{"state": ["inactive", "pending"]}]
