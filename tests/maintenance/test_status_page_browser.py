"""The public status page in a real browser: Debian's headless Chromium loads /status/ from a live server on
loopback (pytest-django's live_server, on the test database), as a visitor on a phone would.

It checks what the visitor sees for an outage and an upcoming window in the DOM Chromium built, and saves a
phone-sized screenshot under the test's output directory (the path is printed).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from datetime import UTC, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from itsm.models import Service
from itsm.services.incidents import incident_create, incident_note, incident_status_update
from itsm.services.maintenance import maintenance_create

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PHONE = (390, 844)  # CSS pixels of a common phone, portrait

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; .ci/run does)"
    ),
]


def chromium(profile: Path, *arguments: str) -> str:
    """One headless Chromium run; a profile of its own so parallel runs never share a lock."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # containers and CI run as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *arguments,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=25, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Visible(HTMLParser):
    """The text a visitor reads, per element kind we care about, from the DOM Chromium serialized."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.rows: list[str] = []  # each service row's text
        self.landmarks: list[str] = []
        self.headings: list[tuple[str, str]] = []
        self._text: dict[int, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in {"header", "main", "footer"}:
            self.landmarks.append(tag)
        self.stack.append((tag, values))
        self._text[len(self.stack)] = []

    def handle_endtag(self, tag: str) -> None:
        if not self.stack:
            return
        opened, values = self.stack.pop()
        text = " ".join(" ".join(self._text.pop(len(self.stack) + 1, [])).split())
        if self.stack:
            self._text.setdefault(len(self.stack), []).append(text)
        if opened == "li" and "row" in values.get("class", ""):
            self.rows.append(text)
        if re.fullmatch(r"h[1-6]", opened):
            self.headings.append((opened, text))

    def handle_data(self, data: str) -> None:
        if self.stack:
            self._text.setdefault(len(self.stack), []).append(data)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)


@pytest.fixture
def outage_and_upcoming_window(agent: Any) -> dict[str, Any]:
    api = Service.objects.create(name="API", slug="api")
    Service.objects.create(name="Mail", slug="mail")
    search = Service.objects.create(name="Search", slug="search")
    incident = incident_create(
        actor=agent,
        title="INTERNAL HighErrorRate api-7 10.1.2.3:8000",
        summary="INTERNAL summary: the pool is exhausted",
        severity="critical",
        services=[api],
        public=True,
        public_title="API answers 502 to every request",
    )
    incident_status_update(incident_id=incident.pk, actor=agent, body="We are investigating elevated errors.")
    incident_note(incident_id=incident.pk, actor=agent, body="INTERNAL: ask dba.oncall@example.com for the dump")
    incident_status_update(incident_id=incident.pk, actor=agent, body="A fix is rolling out; error rates are dropping.")
    starts = (timezone.now() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    maintenance_create(
        actor=agent,
        title="INTERNAL reindex of es-3",
        description="INTERNAL: run the reindex playbook",
        public=True,
        public_title="Search index rebuild",
        starts_at=starts,
        ends_at=starts + timedelta(minutes=45),
        services=[search],
    )
    return {"starts": starts.astimezone(UTC), "ends": (starts + timedelta(minutes=45)).astimezone(UTC)}


def test_a_visitor_on_a_phone_sees_the_outage_its_latest_update_and_the_upcoming_window(
    live_server: Any, outage_and_upcoming_window: dict[str, Any], tmp_path: Path
):
    url = f"{live_server.url}/status/"
    dom = chromium(tmp_path / "profile", f"--window-size={PHONE[0]},{PHONE[1]}", "--dump-dom", url)

    page = Visible()
    page.feed(dom)
    assert '<html lang="en">' in dom
    assert re.search(r'<meta name="viewport" content="width=device-width, initial-scale=1">', dom)
    assert page.landmarks == ["header", "main", "footer"]
    assert page.headings[:2] == [("h1", "Service status"), ("h2", "Services")]
    assert 'role="status"' in dom
    assert "Outage: see below." in dom
    # The state is said in words, not only by colour.
    assert page.rows == ["API Outage", "Mail Operational", "Search Operational"]
    assert ("h3", "API answers 502 to every request") in page.headings
    assert "A fix is rolling out; error rates are dropping." in dom
    assert "We are investigating elevated errors." not in dom  # only the latest update
    assert ("h3", "Search index rebuild") in page.headings
    window = outage_and_upcoming_window
    assert f"{window['starts']:%Y-%m-%d %H:%M} UTC" in dom
    assert f"{window['ends']:%Y-%m-%d %H:%M} UTC" in dom
    assert "Scheduled:" in dom
    assert "INTERNAL" not in dom
    assert "@example.com" not in dom
    assert "<script" not in dom

    screenshot = tmp_path / "status-phone.png"
    chromium(tmp_path / "profile", f"--window-size={PHONE[0]},{PHONE[1]}", f"--screenshot={screenshot}", url)
    assert png_size(screenshot) == PHONE
    assert screenshot.stat().st_size > 5_000  # a rendered page, not a blank one
    print(f"status page screenshot (phone, {PHONE[0]}x{PHONE[1]}): {screenshot}")  # noqa: T201  # where to look at it
