"""Read-only mode, used by restore: writes get a JSON 503 with Retry-After and the reason, reads go on; /health/ and
the itsm_read_only_mode gauge say it is on."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command

from itsm.middleware import read_only_detail
from itsm.services.readonly import CACHE_KEY, flag_path, read_only_enter, read_only_leave, read_only_state


@pytest.fixture(autouse=True)
def _leave() -> Iterator[None]:
    yield
    read_only_leave()


def test_writes_get_503_and_reads_go_on_while_read_only(as_agent):
    read_only_enter(reason="restoring backup #7")
    response = as_agent.post("/api/v1/tickets/", {"title": "Printer"})
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert response.json()["code"] == "read_only_mode"
    assert response.json()["reason"] == "restoring backup #7"
    assert response.json()["detail"] == "The platform is read-only: restoring backup #7. Retry later."
    assert as_agent.get("/api/v1/tickets/").status_code == 200

    read_only_leave()
    assert as_agent.post("/api/v1/tickets/", {"title": "Printer"}).status_code == 201


def test_the_file_flag_alone_turns_it_on_for_processes_without_a_shared_cache():
    read_only_enter(reason="x")
    cache.delete(CACHE_KEY)
    assert read_only_state() is not None


def test_the_cache_flag_alone_turns_it_on_for_other_machines():
    read_only_enter(reason="x")
    flag_path().unlink()
    assert read_only_state() == cache.get(CACHE_KEY)


def test_the_command_turns_it_on_shows_it_and_turns_it_off(db):
    out = StringIO()
    call_command("read_only_mode", "on", "--reason", "disk swap", stdout=out)
    assert "read-only mode is on" in out.getvalue()
    assert "disk swap" in out.getvalue()
    call_command("read_only_mode", "off", stdout=out)
    assert read_only_state() is None


def test_the_503_gives_the_reason_it_was_turned_on_for_not_always_a_restore(as_agent, db):
    call_command("read_only_mode", "on", "--reason", "moving the database to new disks", stdout=StringIO())
    body = as_agent.patch("/api/v1/tickets/1/", {"title": "x"}).json()
    assert body["detail"] == "The platform is read-only: moving the database to new disks. Retry later."
    assert body["code"] == "read_only_mode"
    assert "restored" not in body["detail"]


@pytest.mark.parametrize(
    ("reason", "detail"),
    [
        ("maintenance", "The platform is read-only: maintenance. Retry later."),
        ("storage migration.", "The platform is read-only: storage migration. Retry later."),
        ("  ", "The platform is read-only. Retry later."),
    ],
)
def test_the_detail_reads_as_one_sentence_whatever_the_reason(reason, detail):
    assert read_only_detail(reason) == detail


def test_health_says_read_only_with_its_reason_and_keeps_its_status(as_admin, anonymous, db):
    assert as_admin.get("/health/").json()["read_only"] is False
    state = read_only_enter(reason="storage migration")
    assert anonymous.get("/health/").json() == {"status": "ok"}  # the reason is for staff
    response = as_admin.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"  # the dependencies answer; reads are served
    assert (body["read_only"], body["read_only_reason"], body["read_only_since"]) == (
        True,
        "storage migration",
        state["since"],
    )
    read_only_leave()
    assert as_admin.get("/health/").json()["read_only"] is False


def test_the_gauge_follows_the_flag_on_every_scrape_whoever_changed_it(anonymous, db):
    read_only_enter(reason="x")
    assert "\nitsm_read_only_mode 1.0\n" in anonymous.get("/metrics").content.decode()
    # Another process (a restore in the worker, the command on another machine) turned it off: only the flag says so.
    flag_path().unlink()
    cache.delete(CACHE_KEY)
    assert "\nitsm_read_only_mode 0.0\n" in anonymous.get("/metrics").content.decode()
