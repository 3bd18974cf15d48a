"""The admin pages of backups: agents read, admins start a backup and queue verifications."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from itsm.models import Backup

PAGES = "/admin/itsm/backup/"


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def done(db: Any) -> Backup:
    now = timezone.now()
    return Backup.objects.create(
        kind="database", status="succeeded", verified_ok=True, created_at=now, started_at=now, sha256="c" * 64,
        local_path="database/x.dump",
    )  # fmt: skip


def test_agents_and_admins_see_the_list_and_a_backup(agent, admin, done):
    for user in (agent, admin):
        client = logged_in(user)
        assert client.get(PAGES).status_code == 200
        page = client.get(f"{PAGES}{done.pk}/change/")
        assert page.status_code == 200
        assert "c" * 64 in page.content.decode()


def test_an_agent_cannot_start_a_backup(agent):
    assert logged_in(agent).get(f"{PAGES}add/").status_code == 403


def test_an_admin_starts_a_backup_from_the_add_page(admin):
    response = logged_in(admin).post(f"{PAGES}add/", {"kind": "media", "tier": "daily"})
    assert response.status_code == 302
    backup = Backup.objects.get()
    assert (backup.kind, backup.status, backup.trigger, backup.requested_by) == ("media", "pending", "manual", admin)


def test_the_verify_action_queues_finished_backups_and_refuses_unfinished_ones(admin, done):
    pending = Backup.objects.create(kind="database", created_at=timezone.now())
    response = logged_in(admin).post(
        PAGES, {"action": "verify_backups", "_selected_action": [done.pk, pending.pk]}, follow=True
    )
    text = response.content.decode()
    assert "1 verification(s) queued." in text
    assert f"Backup #{pending.pk} is pending" in text
