"""A maintenance window's admin page: the moves people make, only those its state allows, through
maintenance_transition; and its checklist (announcement, backup, silences, verification with each check's result)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from itsm.models import Event, MaintenanceWindow
from itsm.services.maintenance import maintenance_create, maintenance_update
from itsm.services.maintenance_lifecycle import maintenance_transition
from tests.conftest import page_text
from tests.desk.conftest import Desk, buttons, shown_messages
from tests.maintenance.conftest import START

WINDOWS = "/admin/itsm/maintenancewindow/"
Status = MaintenanceWindow.Status
# The moves offered in each state: never blocked or verification_failed, the verdicts of the gate and the checks.
OFFERED = {
    Status.SCHEDULED: {"in_progress", "cancelled"},
    Status.BLOCKED: {"scheduled", "cancelled"},
    Status.IN_PROGRESS: {"verifying", "cancelled"},
    Status.VERIFYING: {"completed"},
    Status.VERIFICATION_FAILED: {"verifying", "completed"},
    Status.COMPLETED: set(),
    Status.CANCELLED: set(),
}


@pytest.fixture(autouse=True)
def _backup_paths(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_S3_BUCKET = ""


@pytest.fixture
def window(agent: Any, vpn: Any, api_health_served: str) -> MaintenanceWindow:
    return maintenance_create(
        actor=agent,
        title="VPN concentrator firmware",
        starts_at=START,
        ends_at=START + timedelta(hours=1),
        services=[vpn],
        backup_required=False,
        checks=[{"kind": "api_health"}],
        verify_for=timedelta(minutes=10),
    )


def page(window: MaintenanceWindow) -> str:
    return f"{WINDOWS}{window.pk}/change/"


def move(desk: Desk, window: MaintenanceWindow, to: str) -> None:
    assert desk.post(f"{WINDOWS}{window.pk}/desk/move/", {"to": to}).status_code == 302
    window.refresh_from_db()


def checklist(response: Any) -> str:
    return page_text(response).split('id="checklist"')[1].split("</ol>")[0]


def test_each_state_offers_exactly_its_manual_moves(desk: Desk, agent: Any, window: MaintenanceWindow) -> None:
    for status, offered in OFFERED.items():
        MaintenanceWindow.objects.filter(pk=window.pk).update(status=status)
        assert set(buttons(desk.get(page(window)), "move-form")) == offered, status


def test_an_agent_starts_a_window_and_ends_it_early_from_its_page(
    desk: Desk, agent: Any, window: MaintenanceWindow
) -> None:
    move(desk, window, "in_progress")
    assert window.status == Status.IN_PROGRESS
    text = checklist(desk.get(page(window)))
    assert "Database backup before the start</b>: not required for this window" in text
    assert "no Alertmanager configured" in text

    move(desk, window, "verifying")
    assert window.status == Status.VERIFYING  # the checks passed once; they run for ten minutes
    response = desk.get(page(window))
    assert f"MW-{window.pk} is verifying." in shown_messages(response)
    text = checklist(response)
    assert "api_health: 1 run(s) from" in text
    assert 'api_health: <span class="badge done">passed</span>' in text
    moves = Event.objects.filter(window=window, kind="transition").values_list("new_value", "actor")
    assert list(moves) == [("in_progress", agent.pk), ("verifying", agent.pk)]


def test_failed_checks_show_their_errors_and_can_be_run_again(
    desk: Desk, settings: Any, window: MaintenanceWindow
) -> None:
    maintenance_transition(window_id=window.pk, actor=None, to="in_progress")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    move(desk, window, "verifying")
    assert window.status == Status.VERIFICATION_FAILED
    response = desk.get(page(window))
    assert '<span class="badge failed">failed</span> <b>Verification afterwards</b>' in checklist(response)
    assert "answered 200 with status &#x27;degraded&#x27;" in checklist(response)  # the real /health/, cache off
    assert "Re-run the checks" in page_text(response)
    assert "Accept and complete" in page_text(response)


def test_a_start_whose_backup_fails_is_blocked_and_says_why(
    desk: Desk, settings: Any, tmp_path: Path, agent: Any, vpn: Any
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.BACKUP_DIR = blocker / "backups"
    window = maintenance_create(
        actor=agent, title="Database upgrade", starts_at=START, ends_at=START + timedelta(hours=1), services=[vpn]
    )
    move(desk, window, "in_progress")
    assert window.status == Status.BLOCKED
    response = desk.get(page(window))
    assert any(
        message.startswith(f"MW-{window.pk} is blocked. The pre-maintenance backup")
        for message in shown_messages(response)
    )
    assert '<span class="badge failed">failed</span> <b>Database backup before the start</b>' in checklist(response)
    assert set(buttons(response, "move-form")) == {"scheduled", "cancelled"}


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("completed", "Cannot move from 'scheduled' to 'completed'."),
        ("exploded", "Move to: Select a valid choice."),
    ],
)
def test_a_refused_move_is_a_message_and_changes_nothing(
    desk: Desk, window: MaintenanceWindow, to: str, expected: str
) -> None:
    move(desk, window, to)
    assert window.status == Status.SCHEDULED
    assert not Event.objects.filter(window=window, kind="transition").exists()
    assert any(expected in message for message in shown_messages(desk.get(page(window))))


# +1 since two factors: whether the user has an authenticator app, asked once per admin request.
WINDOW_PAGE_BUDGET = 16


def test_the_window_page_costs_the_same_however_long_its_history(
    desk: Desk, window: MaintenanceWindow, django_assert_max_num_queries: Any
) -> None:
    desk.get(page(window))
    with django_assert_max_num_queries(WINDOW_PAGE_BUDGET):
        assert desk.get(page(window)).status_code == 200
    for _ in range(10):
        maintenance_transition(window_id=window.pk, actor=None, to="in_progress")
        maintenance_transition(window_id=window.pk, actor=None, to="cancelled")
        MaintenanceWindow.objects.filter(pk=window.pk).update(status=Status.SCHEDULED, gate_started_at=None)
    with django_assert_max_num_queries(WINDOW_PAGE_BUDGET):
        assert desk.get(page(window)).status_code == 200


def test_a_move_from_a_page_read_before_someone_elses_change_is_refused(
    desk: Desk, agent: Any, window: MaintenanceWindow
) -> None:
    shown = page_text(desk.get(page(window)))
    read_at = re.search(r'<input type="hidden" name="version" value="(\d+)">', shown)
    assert read_at is not None
    assert read_at.group(1) == str(window.version)
    maintenance_update(window_id=window.pk, actor=agent, changes={"title": "VPN firmware 7.2"})
    desk.post(f"{WINDOWS}{window.pk}/desk/move/", {"to": "cancelled", "version": read_at.group(1)})
    window.refresh_from_db()
    assert window.status == Status.SCHEDULED
    expected = "The maintenance window was changed by someone else: fetch it again and reapply your change."
    assert expected in shown_messages(desk.get(page(window)))
