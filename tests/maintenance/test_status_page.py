"""The public status page: no login, each service's state, active incidents and maintenance, nothing internal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from itsm.models import Service
from itsm.services.incidents import incident_create
from itsm.services.maintenance import maintenance_create
from itsm.services.maintenance_lifecycle import maintenance_tick


@pytest.fixture
def visitor() -> Client:
    return Client()


@pytest.fixture
def landscape(agent, database_service):
    """The API is down (critical), mail is slow (medium), the database is in maintenance, a window is coming."""
    api = Service.objects.create(name="API", slug="api")
    mail = Service.objects.create(name="Mail", slug="mail")
    Service.objects.create(name="Search", slug="search")
    incident_create(
        actor=agent,
        title="API answers 502",
        summary="INTERNAL: db pool exhausted, ask alice@example.com",
        severity="critical",
        services=[api],
        commander=agent,
    )
    incident_create(actor=agent, title="Mail is slow", severity="medium", services=[mail])
    now = timezone.now()
    running = maintenance_create(
        actor=agent,
        title="PostgreSQL upgrade",
        starts_at=now + timedelta(seconds=5),
        ends_at=now + timedelta(hours=1),
        services=[database_service],
        backup_required=False,
        description="INTERNAL: run the playbook",
    )
    maintenance_tick(now=running.starts_at)
    maintenance_create(
        actor=agent,
        title="Search reindex",
        starts_at=now + timedelta(days=2),
        ends_at=now + timedelta(days=2, hours=1),
        services=[Service.objects.get(slug="search")],
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


def test_nothing_internal_leaks(visitor, landscape):
    for url in ("/status.json", "/status/"):
        body = visitor.get(url).content.decode()
        assert "INTERNAL" not in body
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


def test_the_page_does_not_grow_its_queries_with_the_services(visitor, landscape, django_assert_max_num_queries):
    for n in range(10):
        Service.objects.create(name=f"Extra {n}", slug=f"extra-{n}")
    with django_assert_max_num_queries(6):
        assert visitor.get("/status.json").status_code == 200
