"""The management commands an operator types: add_user, seed_demo and setup_demo (the first start of `make run`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from io import StringIO
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from itsm.lifecycles import TICKET_TRANSITIONS
from itsm.models import Comment, Event, Service, Team, Ticket
from itsm.services.sla import calendar_from, sla_policy_default, sla_status_at, ticket_sla_times
from tests.factories import make_user

ROOT = Path(__file__).resolve().parent.parent
User = get_user_model()


def run(*args: Any) -> str:
    out = StringIO()
    call_command(*[str(arg) for arg in args], stdout=out, stderr=StringIO())
    return out.getvalue()


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    """`python manage.py ...` in a child process, against the test database."""
    settings = connection.settings_dict
    password = f":{quote(settings['PASSWORD'])}" if settings.get("PASSWORD") else ""
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    url = f"postgres://{quote(settings['USER'])}{password}@{settings['HOST']}{port}/{settings['NAME']}"
    env = {**os.environ, "DATABASE_URL": url}
    python = ROOT / ".venv" / "bin" / "python"
    return subprocess.run(
        [str(python if python.exists() else sys.executable), "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def role_groups(user: Any) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


# --- add_user ----------------------------------------------------------------------------------------------


def test_add_user_creates_a_user_with_the_role_group_and_a_usable_password(db: Any) -> None:
    out = run("add_user", "carol", "--role", "agent", "--password", "correct-horse-battery", "--email", "c@example.com")
    assert "Created carol as agent" in out
    carol = User.objects.get(username="carol")
    assert role_groups(carol) == ["agent"]
    assert carol.email == "c@example.com"
    assert carol.is_staff
    assert not carol.is_superuser
    assert carol.has_usable_password()
    assert authenticate(username="carol", password="correct-horse-battery") == carol


def test_add_user_run_again_with_another_role_updates_the_user_to_exactly_that_role(db: Any) -> None:
    run("add_user", "carol", "--role", "agent", "--password", "correct-horse-battery")
    out = run("add_user", "carol", "--role", "admin")
    assert "Updated carol as admin" in out
    carol = User.objects.get(username="carol")
    assert role_groups(carol) == ["admin"]
    assert carol.is_superuser
    assert carol.is_staff
    assert carol.check_password("correct-horse-battery")
    run("add_user", "carol", "--role", "requester", "--password", "another-long-phrase")
    carol.refresh_from_db()
    assert role_groups(carol) == ["requester"]
    assert not carol.is_staff
    assert not carol.is_superuser
    assert carol.check_password("another-long-phrase")
    assert User.objects.filter(username="carol").count() == 1


def test_add_user_without_a_password_creates_a_user_who_cannot_log_in_yet_and_says_so(db: Any) -> None:
    out = run("add_user", "dave", "--role", "requester")
    assert "no password yet" in out
    assert not User.objects.get(username="dave").has_usable_password()


@pytest.mark.parametrize(
    ("password", "problem"),
    [("Sh0rt!", "too short"), ("password123", "too common"), ("83920174651", "entirely numeric")],
)
def test_add_user_with_a_weak_password_fails_naming_the_problem_and_creates_nothing(
    db: Any, password: str, problem: str
) -> None:
    with pytest.raises(CommandError, match=problem):
        run("add_user", "erin", "--role", "agent", "--password", password)
    assert not User.objects.filter(username="erin").exists()


def test_add_user_with_a_weak_password_leaves_an_existing_user_unchanged(db: Any) -> None:
    erin = make_user("erin", "requester", password="correct-horse-battery")
    with pytest.raises(CommandError, match=r"password: .*too short"):
        run("add_user", "erin", "--role", "admin", "--password", "abc", "--email", "new@example.com")
    erin.refresh_from_db()
    assert role_groups(erin) == ["requester"]
    assert not erin.is_superuser
    assert erin.email == "erin@example.com"
    assert erin.check_password("correct-horse-battery")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["", "--role", "agent"], "username"),
        (["no spaces please", "--role", "agent"], "username"),
        (["x" * 151, "--role", "agent"], "username"),
        (["frank", "--role", "agent", "--email", "not-an-address"], "email"),
        (["frank", "--role", "boss"], "invalid choice"),
        (["frank"], "--role"),
    ],
)
def test_add_user_with_bad_input_fails_with_a_clear_message_and_creates_nothing(
    db: Any, args: list[str], problem: str
) -> None:
    before = User.objects.count()
    with pytest.raises(CommandError, match=problem):
        run("add_user", *args)
    assert User.objects.count() == before


def test_add_user_with_an_unknown_role_exits_non_zero_with_a_message_on_stderr(db: Any) -> None:
    result = manage("add_user", "grace", "--role", "boss", "--password", "correct-horse-battery")
    assert result.returncode == 2
    assert "invalid choice: 'boss'" in result.stderr
    assert "requester" in result.stderr
    assert not User.objects.filter(username="grace").exists()


def test_add_user_with_a_short_password_exits_non_zero_with_a_message_on_stderr(db: Any) -> None:
    result = manage("add_user", "grace", "--role", "agent", "--password", "abc")
    assert result.returncode == 1
    assert "too short" in result.stderr
    assert result.stdout == ""


# --- seed_demo ---------------------------------------------------------------------------------------------


def test_seed_demo_creates_tickets_with_history_comments_services_and_teams(db: Any) -> None:
    out = run("seed_demo", "--tickets", 50, "--seed", 1)
    assert "Seeded 50 tickets" in out
    assert Ticket.objects.count() == 50
    assert Event.objects.filter(kind=Event.Kind.CREATED).count() == 50
    assert Event.objects.filter(kind=Event.Kind.TRANSITION).exists()
    assert Comment.objects.exists()
    assert Service.objects.count() == 8
    assert Team.objects.count() == 2
    assert Ticket.objects.filter(service__isnull=True).count() == 0
    assert set(Ticket.objects.values_list("status", flat=True)) >= {"new", "open", "in_progress", "closed"}


def test_seed_demo_run_again_adds_tickets_without_duplicating_services_or_users(db: Any) -> None:
    run("seed_demo", "--tickets", 50, "--seed", 1)
    counts = (Service.objects.count(), Team.objects.count(), User.objects.count())
    run("seed_demo", "--tickets", 50, "--seed", 1)
    assert Ticket.objects.count() == 100
    assert (Service.objects.count(), Team.objects.count(), User.objects.count()) == counts


def test_seed_demo_reuses_a_service_an_operator_has_given_another_slug(db: Any) -> None:
    Service.objects.create(name="VPN", slug="corporate-vpn")
    run("seed_demo", "--tickets", 5, "--seed", 1)
    assert Service.objects.filter(name="VPN").count() == 1
    assert Service.objects.count() == 8


def test_seed_demo_shows_a_progress_bar(db: Any, capsys: Any) -> None:
    call_command("seed_demo", "--tickets", "30", "--batch-size", "10", stdout=StringIO())
    assert "30/30" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--tickets", "-1"], "--tickets must be 0 or more"),
        (["--days", "0"], "--days must be 1 or more"),
        (["--batch-size", "0"], "--batch-size must be 1 or more"),
        (["--tickets", "many"], "invalid int value"),
    ],
)
def test_seed_demo_with_bad_input_fails_with_a_clear_message_and_creates_nothing(
    db: Any, args: list[str], problem: str
) -> None:
    with pytest.raises(CommandError, match=problem):
        run("seed_demo", *args)
    assert not Ticket.objects.exists()
    assert not Service.objects.exists()


def test_seed_demo_with_a_negative_ticket_count_exits_non_zero_with_a_message_on_stderr(db: Any) -> None:
    result = manage("seed_demo", "--tickets", "-1")
    assert result.returncode == 1
    assert "--tickets must be 0 or more" in result.stderr


def test_seeded_tickets_mostly_meet_their_targets_and_a_minority_breaches(db: Any) -> None:
    run("seed_demo", "--tickets", 300, "--seed", 7)
    breached = Ticket.objects.filter(sla_status=Ticket.SlaStatus.BREACHED).count()
    assert 0 < breached < 150
    assert 0.05 * 300 <= breached <= 0.3 * 300
    assert Ticket.objects.filter(sla_status=Ticket.SlaStatus.MET).count() > 150
    for priority in Ticket.Priority.values:
        tickets = Ticket.objects.filter(priority=priority)
        if tickets.count() >= 10:
            assert tickets.filter(sla_status=Ticket.SlaStatus.BREACHED).count() < tickets.count() / 2, priority
    assert Event.objects.filter(kind=Event.Kind.SLA, new_value="breached").count() == breached


def test_seeded_tickets_have_a_history_that_explains_their_status_and_due_times(db: Any) -> None:
    run("seed_demo", "--tickets", 200, "--seed", 3)
    now = timezone.now()
    policy = sla_policy_default()
    calendar = calendar_from(policy.calendar)
    tickets = Ticket.objects.prefetch_related("events")
    for ticket in tickets:
        transitions = [e for e in ticket.events.all() if e.kind == Event.Kind.TRANSITION]
        path = ["new", *(e.new_value for e in transitions)]
        assert path[-1] == ticket.status
        assert all(new in TICKET_TRANSITIONS[old] for old, new in pairwise(path)), path
        moments = [ticket.created_at, *(e.created_at for e in transitions)]
        assert moments == sorted(moments)
        assert moments[-1] <= now
        for stamp in (ticket.first_response_at, ticket.resolved_at, ticket.closed_at):
            assert stamp is None or ticket.created_at <= stamp <= now
        changes = [(ticket.created_at, "new"), *((e.created_at, e.new_value) for e in transitions)]
        times = ticket_sla_times(ticket=ticket, policy=policy, calendar=calendar, changes=changes)
        assert (times.response_due_at, times.resolution_due_at) == (ticket.response_due_at, ticket.resolution_due_at)
        fresh = Ticket(**{f.attname: getattr(ticket, f.attname) for f in Ticket._meta.concrete_fields})
        fresh.sla_status = Ticket.SlaStatus.OK
        assert sla_status_at(fresh, now) == ticket.sla_status


# --- setup_demo --------------------------------------------------------------------------------------------


def test_setup_demo_on_an_empty_database_prints_three_working_logins_once(db: Any) -> None:
    out = run("setup_demo", "--tickets", 20)
    logins = re.findall(r"^\s+(admin|agent|requester)\s+(\S+)\s+(\S+)$", out, flags=re.MULTILINE)
    assert sorted(role for role, _, _ in logins) == ["admin", "agent", "requester"]
    for role, username, password in logins:
        user = authenticate(username=username, password=password)
        assert user is not None, username
        assert role_groups(user) == [role]
    assert "shown only once" in out
    assert Ticket.objects.count() == 20
    # The agent's desk has a team: the workplace services' tickets are "unassigned in my teams".
    assert list(User.objects.get(username="agent").teams.values_list("slug", flat=True)) == ["workplace"]

    users, tickets = User.objects.count(), Ticket.objects.count()
    again = run("setup_demo", "--tickets", 20)
    assert "Users exist already" in again
    for _, _, password in logins:
        assert password not in again
    assert (User.objects.count(), Ticket.objects.count()) == (users, tickets)


def test_setup_demo_creates_nothing_when_any_user_exists(db: Any) -> None:
    make_user("someone", "requester")
    out = run("setup_demo", "--tickets", 5)
    assert "Users exist already" in out
    assert list(User.objects.values_list("username", flat=True)) == ["someone"]
    assert not Ticket.objects.exists()


def test_setup_demo_with_a_negative_ticket_count_fails_and_leaves_the_database_empty(db: Any) -> None:
    with pytest.raises(CommandError, match="--tickets must be 0 or more"):
        run("setup_demo", "--tickets", -1)
    assert not User.objects.exists()
    out = run("setup_demo", "--tickets", 0)
    assert "shown only once" in out
