"""The public status page: no login, each service's state, the active incidents and maintenance that staff made public
(under their public titles, with their public updates), nothing internal and nothing private."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from itsm.models import Service
from itsm.services.incidents import incident_create, incident_note, incident_status_update, incident_update
from itsm.services.maintenance import maintenance_create
from itsm.services.maintenance_lifecycle import maintenance_tick


@pytest.fixture
def visitor() -> Client:
    return Client()


@pytest.fixture
def landscape(agent, database_service):
    """The API is down (critical), mail is slow (medium), the database is in maintenance, a window is coming: all of
    them public. A private critical incident of search and a private window are not shown, nor change any state."""
    api = Service.objects.create(name="API", slug="api")
    mail = Service.objects.create(name="Mail", slug="mail")
    search = Service.objects.create(name="Search", slug="search")
    incident_create(
        actor=agent,
        title="INTERNAL HighErrorRate on api-7 10.1.2.3:8000",
        summary="INTERNAL: db pool exhausted, ask alice@example.com",
        severity="critical",
        services=[api],
        commander=agent,
        public=True,
        public_title="API answers 502",
    )
    incident_create(
        actor=agent,
        title="INTERNAL SMTP relay queue",
        severity="medium",
        services=[mail],
        public=True,
        public_title="Mail is slow",
    )
    incident_create(actor=agent, title="INTERNAL-PRIVATE search-2 down", severity="critical", services=[search])
    now = timezone.now()
    running = maintenance_create(
        actor=agent,
        title="PostgreSQL upgrade",
        starts_at=now + timedelta(seconds=5),
        ends_at=now + timedelta(hours=1),
        services=[database_service],
        backup_required=False,
        description="INTERNAL: run the playbook",
        public=True,
        public_title="PostgreSQL upgrade",
    )
    maintenance_tick(now=running.starts_at)
    maintenance_create(
        actor=agent,
        title="INTERNAL reindex of es-cluster-3",
        starts_at=now + timedelta(days=2),
        ends_at=now + timedelta(days=2, hours=1),
        services=[search],
        public=True,
        public_title="Search reindex",
    )
    maintenance_create(
        actor=agent,
        title="INTERNAL-PRIVATE window",
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=1),
        services=[mail],
    )


def test_the_json_says_each_services_state_without_a_login(visitor, landscape):
    response = visitor.get("/status.json")
    assert response.status_code == 200
    data = response.json()
    states = {service["slug"]: service["state"] for service in data["services"]}
    assert states == {"api": "outage", "mail": "degraded", "database": "maintenance", "search": "operational"}
    assert [incident["title"] for incident in data["incidents"]] == ["Mail is slow", "API answers 502"]
    assert [(w["title"], w["status"]) for w in data["maintenance"]] == [
        ("PostgreSQL upgrade", "in_progress"),
        ("Search reindex", "scheduled"),
    ]


def test_a_private_incident_is_absent_and_a_public_one_shows_only_its_public_text(visitor, agent):
    api = Service.objects.create(name="API", slug="api")
    shown = incident_create(
        actor=agent,
        title="HighErrorRate on api-7 10.1.2.3:8000",
        summary="Alert: 5xx ratio 0.31 on instance 10.1.2.3:8000 (http://prometheus:9090/graph?g0.expr=x)",
        severity="high",
        services=[api],
        commander=agent,
    )
    incident_note(incident_id=shown.pk, actor=agent, body="Restarted api-7; pool at 100/100")
    update = incident_status_update(incident_id=shown.pk, actor=agent, body="Some requests fail; we are on it.")
    hidden = incident_create(actor=agent, title="DatabaseDown db-primary 10.0.0.5:5432", severity="critical")
    incident_status_update(incident_id=hidden.pk, actor=agent, body="Private incident's update")
    private_body = visitor.get("/status.json").json()
    assert private_body["incidents"] == []
    assert [s["state"] for s in private_body["services"]] == ["operational"]

    incident_update(
        incident_id=shown.pk, actor=agent, changes={"public": True, "public_title": "Some API requests fail"}
    )
    data = visitor.get("/status.json").json()
    assert data["incidents"] == [
        {
            "title": "Some API requests fail",
            "severity": "high",
            "status": "detected",
            "services": ["API"],
            "detected_at": shown.detected_at.isoformat(),
            "updated_at": data["incidents"][0]["updated_at"],
            "latest_update": {"body": "Some requests fail; we are on it.", "at": update.created_at.isoformat()},
        }
    ]
    assert [s["state"] for s in data["services"]] == ["degraded"]
    html = visitor.get("/status/").content.decode()
    assert "Some API requests fail" in html
    assert "Some requests fail; we are on it." in html
    for body in (str(data), html):
        for internal in ("HighErrorRate", "10.1.2.3", "api-7", "5xx ratio", "prometheus", "pool", agent.username):
            assert internal not in body
        for private in ("DatabaseDown", "db-primary", "10.0.0.5", "Private incident"):
            assert private not in body


def test_nothing_internal_leaks(visitor, landscape):
    for url in ("/status.json", "/status/"):
        body = visitor.get(url).content.decode()
        assert "INTERNAL" not in body
        assert "search-2" not in body
        assert "@example.com" not in body
        assert "alice" not in body


def test_the_page_is_plain_accessible_html_for_a_phone(visitor, landscape):
    response = visitor.get("/status/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="en">' in html
    assert 'name="viewport"' in html
    assert "<script" not in html
    assert 'role="status"' in html
    assert "Outage" in html
    assert "Under maintenance" in html
    assert "API answers 502" in html
    assert "Search reindex" in html
    assert " UTC" in html


def test_with_nothing_wrong_all_services_are_operational(visitor, database_service):
    html = visitor.get("/status/").content.decode()
    assert "All services are operational." in html
    assert "No active incidents." in html
    assert "No maintenance is scheduled." in html


def test_the_status_page_only_answers_reads(visitor, db):
    assert visitor.post("/status.json").status_code == 405


def test_the_page_does_not_grow_its_queries_with_the_services(visitor, landscape, agent, django_assert_max_num_queries):
    for n in range(10):
        service = Service.objects.create(name=f"Extra {n}", slug=f"extra-{n}")
        incident_create(actor=agent, title=f"INTERNAL {n}", services=[service], public=True, public_title=f"P{n}")
    with django_assert_max_num_queries(6):
        assert visitor.get("/status.json").status_code == 200
