"""/api/v1/backups/drills/ and the admin's list of drills: agents and admins read, nobody writes; requesters and
anonymous callers see nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from itsm.models import RecoveryDrill

URL = "/api/v1/backups/drills/"
PAGES = "/admin/itsm/recoverydrill/"
MOMENT = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)


def drill(days_ago: int, **fields: Any) -> RecoveryDrill:
    started = MOMENT - timedelta(days=days_ago)
    defaults: dict[str, Any] = {
        "status": RecoveryDrill.Status.SUCCEEDED,
        "trigger": RecoveryDrill.Trigger.SCHEDULED,
        "started_at": started,
        "finished_at": started + timedelta(minutes=2),
        "target_time": started + timedelta(seconds=1),
        "rpo_seconds": 21.5,
        "rto_seconds": 8.25,
        "backup_label": "20261201-011000F",
        "restored_tables": 40,
        "restored_rows": 12000,
    }
    return RecoveryDrill.objects.create(**{**defaults, **fields})


@pytest.mark.django_db
def test_an_agent_lists_the_drills_newest_first_in_pages(as_agent, django_assert_max_num_queries):
    for days in range(5):
        drill(days)
    drill(10, status=RecoveryDrill.Status.FAILED, rpo_seconds=None, rto_seconds=None, error="WAL segment …")

    with django_assert_max_num_queries(4):
        response = as_agent.get(URL, {"page_size": 2})

    assert response.status_code == 200
    body = response.json()
    assert [row["started_at"][:10] for row in body["results"]] == ["2026-12-03", "2026-12-02"]
    assert body["next"]
    last = as_agent.get(URL, {"page_size": 2, "page": 3}).json()
    assert [row["status"] for row in last["results"]] == ["succeeded", "failed"]
    assert not last["next"]
    first = body["results"][0]
    assert first["started_at"] == "2026-12-03T14:05:00Z"
    assert (first["rpo_seconds"], first["rto_seconds"], first["status"]) == (21.5, 8.25, "succeeded")


@pytest.mark.django_db
def test_failed_drills_can_be_filtered_and_one_read(as_agent):
    drill(1)
    failed = drill(2, status=RecoveryDrill.Status.FAILED, rpo_seconds=None, error="the target cannot be reached")

    rows = as_agent.get(URL, {"status": "failed"}).json()["results"]
    one = as_agent.get(f"{URL}{failed.pk}/").json()

    assert [row["id"] for row in rows] == [failed.pk]
    assert one["error"] == "the target cannot be reached"


@pytest.mark.django_db
def test_bad_filters_and_unknown_drills_are_4xx_json(as_admin):
    assert as_admin.get(URL, {"status": "exploded"}).status_code == 400
    assert as_admin.get(f"{URL}999999/").status_code == 404
    assert as_admin.get(f"{URL}abc/").status_code == 404


@pytest.mark.django_db
def test_nobody_writes_a_drill_through_the_api(as_admin):
    assert as_admin.post(URL, {"status": "succeeded"}, format="json").status_code == 405
    one = drill(1)
    assert as_admin.delete(f"{URL}{one.pk}/").status_code == 405


@pytest.mark.django_db
def test_requesters_and_anonymous_callers_see_no_drills(as_requester, anonymous):
    drill(1)
    assert as_requester.get(URL).status_code == 403
    assert anonymous.get(URL).status_code == 401


@pytest.mark.django_db
def test_backups_are_still_read_by_id_beside_the_drills(as_agent):
    assert as_agent.get("/api/v1/backups/").status_code == 200
    assert as_agent.get("/api/v1/backups/999999/").status_code == 404


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_agents_and_admins_read_the_drills_in_the_admin_and_nobody_edits_them(agent, admin):
    one = drill(1)
    for user in (agent, admin):
        client = logged_in(user)
        listing = client.get(PAGES)
        assert listing.status_code == 200
        assert "20261201-011000F" in client.get(f"{PAGES}{one.pk}/change/").content.decode()
        assert client.get(f"{PAGES}add/").status_code == 403
        assert client.post(f"{PAGES}{one.pk}/delete/", {"post": "yes"}).status_code == 403
    assert RecoveryDrill.objects.filter(pk=one.pk).exists()


@pytest.mark.django_db
def test_a_requester_does_not_see_the_drills_in_the_admin(requester):
    assert logged_in(requester).get(PAGES).status_code in (302, 403)
