"""The desk's tests: signed-in admin clients that check CSRF as a browser's session does, the page's forms posted
with the token, and a team that owns a service (the agent's "my teams")."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.test import Client

from itsm.models import Service, Team
from tests.conftest import page_text
from tests.factories import make_user


class Desk:
    """The admin as one signed-in person uses it: CSRF is enforced, and every post carries the token the pages set
    (as the forms do)."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.client = Client(enforce_csrf_checks=True)
        self.client.force_login(user)

    def get(self, url: str, **params: Any) -> Any:
        return self.client.get(url, params)

    def token(self) -> str:
        for page in ("/admin/", "/admin/login/"):  # the index for staff, the sign-in form for anyone else
            if "csrftoken" not in self.client.cookies:
                self.client.get(page)
        return str(self.client.cookies["csrftoken"].value)

    def post(self, url: str, data: dict[str, Any] | None = None, *, follow: bool = False) -> Any:
        return self.client.post(url, {**(data or {}), "csrfmiddlewaretoken": self.token()}, follow=follow)

    def post_without_token(self, url: str, data: dict[str, Any] | None = None) -> Any:
        return self.client.post(url, data or {})


def shown_messages(response: Any) -> list[str]:
    """The admin's messages on a page, as text."""
    found = re.findall(r'<li class="[a-z]+">(.*?)</li>', _list(response), re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", "", message)).split()) for message in found]


def _list(response: Any) -> str:
    match = re.search(r'<ul class="messagelist">(.*?)</ul>', page_text(response), re.S)
    return match.group(1) if match else ""


def buttons(response: Any, form_id: str) -> list[str]:
    """The values of the submit buttons named `to` in one form of the page: the moves it offers."""
    match = re.search(rf'<form[^>]*id="{form_id}".*?</form>', page_text(response), re.S)
    return re.findall(r'<button type="submit" name="to" value="([a-z_]+)"', match.group(0)) if match else []


@pytest.fixture
def desk(agent: Any) -> Desk:
    return Desk(agent)


@pytest.fixture
def admin_desk(admin: Any) -> Desk:
    return Desk(admin)


@pytest.fixture
def service_desk_team(agent: Any) -> Team:
    team = Team.objects.create(name="Service desk", slug="service-desk")
    team.members.add(agent)
    return team


@pytest.fixture
def vpn(service_desk_team: Team) -> Service:
    """A service of the agent's team."""
    return Service.objects.create(name="VPN", slug="vpn", team=service_desk_team)


@pytest.fixture
def payroll(db: Any) -> Service:
    """A service of another team."""
    team = Team.objects.create(name="Finance IT", slug="finance-it")
    team.members.add(make_user("fiona", "agent"))
    return Service.objects.create(name="Payroll", slug="payroll", team=team)
