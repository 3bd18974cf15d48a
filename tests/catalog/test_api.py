"""Services and teams: every signed-in user reads them, admins change them."""

from __future__ import annotations

import pytest

from itsm.models import Service
from tests.etags import if_match
from tests.factories import ServiceFactory, TeamFactory

URL = "/api/v1/services/"


@pytest.mark.django_db
class TestServices:
    def test_admin_creates_edits_and_deletes_a_service(self, as_admin):
        team = TeamFactory.create()
        created = as_admin.post(
            URL, {"name": "VPN", "slug": "vpn", "team": team.pk, "description": "Remote access"}, format="json"
        )
        assert created.status_code == 201, created.content
        service_id = created.json()["id"]
        edited = as_admin.patch(
            f"{URL}{service_id}/",
            {"description": "Remote access for staff"},
            format="json",
            **if_match(Service, service_id),
        )
        assert edited.status_code == 200
        assert as_admin.delete(f"{URL}{service_id}/").status_code == 204
        assert not Service.objects.exists()

    def test_requesters_and_agents_read_but_cannot_change_services(self, as_requester, as_agent):
        service = ServiceFactory.create()
        for client in (as_requester, as_agent):
            assert client.get(f"{URL}{service.pk}/").json()["slug"] == service.slug
            assert client.post(URL, {"name": "X", "slug": "x"}, format="json").status_code == 403
            assert client.patch(f"{URL}{service.pk}/", {"name": "Y"}, format="json").status_code == 403
        assert Service.objects.get().name == service.name

    def test_duplicate_and_malformed_slugs_are_field_errors(self, as_admin):
        ServiceFactory.create(slug="vpn")
        response = as_admin.post(URL, {"name": "VPN 2", "slug": "vpn"}, format="json")
        assert response.status_code == 400
        assert "slug" in response.json()
        response = as_admin.post(URL, {"name": "Bad", "slug": "not a slug!"}, format="json")
        assert response.status_code == 400
        assert "slug" in response.json()

    def test_a_service_with_tickets_cannot_be_deleted(self, as_admin, requester):
        from tests.factories import make_ticket

        service = ServiceFactory.create()
        make_ticket(requester, service=service)
        response = as_admin.delete(f"{URL}{service.pk}/")
        assert response.status_code == 409
        assert Service.objects.filter(pk=service.pk).exists()

    def test_services_filter_by_team_and_search(self, as_requester):
        team = TeamFactory.create()
        vpn = ServiceFactory.create(name="VPN", slug="vpn", team=team)
        ServiceFactory.create(name="Mail", slug="mail")
        assert [s["id"] for s in as_requester.get(URL, {"team": team.pk}).json()["results"]] == [vpn.pk]
        assert [s["id"] for s in as_requester.get(URL, {"search": "vp"}).json()["results"]] == [vpn.pk]


@pytest.mark.django_db
def test_admin_manages_teams_and_members(as_admin, as_agent, agent):
    created = as_admin.post(
        "/api/v1/teams/", {"name": "Platform", "slug": "platform", "members": [agent.pk]}, format="json"
    )
    assert created.status_code == 201, created.content
    assert as_agent.get(f"/api/v1/teams/{created.json()['id']}/").json()["members"] == [agent.pk]
    assert as_agent.post("/api/v1/teams/", {"name": "X", "slug": "x"}, format="json").status_code == 403
