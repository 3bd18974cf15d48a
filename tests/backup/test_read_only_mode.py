"""Read-only mode, used by restore: writes get a JSON 503 with Retry-After, reads go on."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command

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
    assert as_agent.get("/api/v1/tickets/").status_code == 200
    assert as_agent.get("/health/").status_code in (200, 503)

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
