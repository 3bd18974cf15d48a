"""Every area's admin pages load for an admin: the catalogue, SLA policies, calendars, job runs, mail and users."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from itsm.models import JobRun
from itsm.services.sla import sla_policy_default
from tests.factories import ServiceFactory


@pytest.fixture
def service(db: Any) -> Any:
    return ServiceFactory.create(name="VPN", slug="vpn")


# --- The rest of the catalogue -----------------------------------------------------------------------------


def test_services_teams_sla_policy_calendars_job_runs_and_users_changelists_load(
    operator: Client, service: Any
) -> None:
    sla_policy_default()
    JobRun.objects.create(job="scan_sla", slot="2030-01-01T00:00Z", started_at="2030-01-01T00:00Z")
    for path in (
        "/admin/itsm/service/",
        "/admin/itsm/team/",
        "/admin/itsm/slapolicy/",
        "/admin/itsm/businesscalendar/",
        "/admin/itsm/jobrun/",
        "/admin/itsm/mailbox/",
        "/admin/itsm/inboundmessage/",
        "/admin/itsm/suppressedaddress/",
        "/admin/itsm/notificationpreference/",
        "/admin/auth/user/",
        "/admin/",
    ):
        response = operator.get(path)
        assert response.status_code == 200, path
    for path in (
        f"/admin/itsm/service/{service.pk}/change/",
        f"/admin/itsm/team/{service.team_id}/change/",
        f"/admin/itsm/slapolicy/{sla_policy_default().pk}/change/",
        f"/admin/itsm/jobrun/{JobRun.objects.get().pk}/change/",
        "/admin/itsm/service/add/",
        "/admin/itsm/businesscalendar/add/",
        "/admin/itsm/mailbox/add/",
        "/admin/itsm/notificationpreference/add/",
    ):
        response = operator.get(path)
        assert response.status_code == 200, path


def test_the_favicon_browsers_ask_for_is_the_platforms_not_a_404(db: Any) -> None:
    """The admin's pages name no icon, so every page load asked for /favicon.ico and logged a 404 in the browser's
    console (tests/desk/test_browser.py fails on any console error)."""
    response = Client().get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/itsm/favicon.svg"
    assert finders.find("itsm/favicon.svg")
