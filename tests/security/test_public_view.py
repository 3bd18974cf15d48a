"""Requesters see incidents, maintenance windows and alerts only as the status page shows them, through every route.

Every GET route of the URLconf (tests/security/routes.py) is walked as a requester, with the queries that would reach
hidden text in the incident and window lists (a search for it, a filter on a hidden field, an ordering by one), and
every GET operation of the OpenAPI schema about incidents, windows and alerts is known to have been walked. The
incidents and windows found carry exactly their PUBLIC_FIELDS, are the public ones, and say what /status.json says;
alerts are refused; no internal or private text appears in any body.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.utils.dateparse import parse_datetime
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from itsm.models import Incident, MaintenanceWindow, incidents, maintenance
from tests.security.conftest import World
from tests.security.routes import OPERATIONS, project_routes
from tests.security.test_route_walker import _urls

pytestmark = pytest.mark.django_db

PUBLIC_FIELDS = {"incident": set(incidents.PUBLIC_FIELDS), "maintenance-window": set(maintenance.PUBLIC_FIELDS)}
# Routes that are no part of the public view: requesters are refused, whatever the object.
STAFF_ONLY = {"alert-list", "alert-detail", "incident-postmortem", "maintenance-window-events"}
# What each query would reach if it were applied to a requester's list: hidden text, a hidden field's value.
HIDDEN_QUERIES = {
    "incident-list": (
        "?search=INTERNAL-INCIDENT-SUMMARY",
        "?search=INTERNAL-INCIDENT-TITLE",
        "?search=PUBLIC-INCIDENT-TITLE",
        "?commander={requester}",
        "?source=alertmanager",
        "?target_missed=true",
        "?ordering=response_due_at",
        "?public=false",
    ),
    "maintenance-window-list": (
        "?search=INTERNAL-WINDOW-DESCRIPTION",
        "?search=PUBLIC-WINDOW-TITLE",
        "?series=1",
        "?ordering=-updated_at",
        "?public=false",
    ),
}


def _kind(route_name: str) -> str | None:
    for kind in ("maintenance-window", "incident", "alert"):
        if route_name.startswith(f"{kind}-"):
            return kind
    return None


def _objects(body: Any) -> list[dict[str, Any]]:
    return body["results"] if isinstance(body, dict) and "results" in body else [body]


def _walk(world: World, client: APIClient, requester: Any) -> dict[str, tuple[str, int, Any]]:
    """GET every readable route as `client`; returns each URL walked with its route, status and JSON body."""
    answers = {}
    for route in project_routes():
        op = OPERATIONS[(route.name, "GET")] if "GET" in route.methods else None
        if op is None or op.who in ("public", "session") or route.format_suffix:
            continue
        urls = [url for url, _ in _urls(route, op, world)]
        if op.target in ("incident", "maintenance-window"):
            # The private one, by the same route: as if it did not exist.
            private = world.objects[f"private-{op.target}"][0]
            urls += [url.replace(f"/{world.objects[op.target][0]}/", f"/{private}/") for url in urls]
        for url in urls:
            queries = ("", *HIDDEN_QUERIES.get(route.name, ())) if op.target is None else ("",)
            for query in queries:
                full = url + query.format(requester=requester.pk)
                response = client.get(full)
                body = b"".join(getattr(response, "streaming_content", [])) or response.content
                parsed = json.loads(body) if body.startswith((b"{", b"[")) else body.decode()
                answers[full] = (route.name, response.status_code, parsed)
    return answers


def test_every_route_as_a_requester_shows_only_the_public_view_of_incidents_windows_and_alerts(
    world: World, personas: dict[str, APIClient], requester: Any
) -> None:
    answers = _walk(world, personas["rita"], requester)
    public = {"incident": world.objects["incident"], "maintenance-window": world.objects["maintenance-window"]}
    private = {str(world.objects["private-incident"][0]), str(world.objects["private-maintenance-window"][0])}
    checked = 0
    for url, (route, status, body) in answers.items():
        path = urlsplit(url).path
        kind = _kind(route)
        if route in STAFF_ONLY:
            assert status in (403, 404), (url, status)
            continue
        if kind in PUBLIC_FIELDS and any(f"/{pk}/" in path for pk in private):
            assert status == 404, (url, status, body)
            continue
        if kind in PUBLIC_FIELDS and route.endswith(("-list", "-detail")):
            assert status == 200, (url, status, body)
            for shown in _objects(body):
                assert set(shown) == PUBLIC_FIELDS[kind], (url, set(shown) ^ PUBLIC_FIELDS[kind])
                assert shown["id"] in public[kind], (url, shown)
                checked += 1
        if route == "incident-timeline":
            assert status == 200, (url, status)
            assert [(e["kind"], e["actor"]) for e in body["results"]] == [("status_update", None)], url
    assert checked > 10
    everything = json.dumps([body for _, _, body in answers.values()])
    leaked = [marker for marker in [*world.internal_markers, *world.private_markers] if marker in everything]
    assert leaked == [], f"a requester reads {leaked}"
    assert all(marker in everything for marker in world.public_markers)


def test_hidden_fields_cannot_be_searched_filtered_or_sorted_on_by_a_requester(
    world: World, personas: dict[str, APIClient], requester: Any
) -> None:
    incident_list, window_list = "/api/v1/incidents/", "/api/v1/maintenance-windows/"

    def ids(client: APIClient, url: str) -> list[int]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.content[:300])
        return [shown["id"] for shown in response.json()["results"]]

    rita, agent = personas["rita"], personas["agent"]
    public_incident, public_window = world.objects["incident"], world.objects["maintenance-window"]
    assert ids(rita, incident_list) == public_incident
    assert ids(rita, incident_list + "?search=INTERNAL-INCIDENT-SUMMARY") == []
    assert ids(agent, incident_list + "?search=INTERNAL-INCIDENT-SUMMARY") == public_incident
    assert ids(rita, incident_list + "?search=PUBLIC-INCIDENT-TITLE") == public_incident
    # Nobody commands an incident as rita: the filter, applied, would leave nothing.
    assert ids(agent, incident_list + f"?commander={requester.pk}") == []
    assert ids(rita, incident_list + f"?commander={requester.pk}") == public_incident
    assert ids(rita, incident_list + "?public=false") == public_incident
    # A staff-only filter is still checked as the schema says.
    assert rita.get(incident_list + "?commander=abc").status_code == 400
    assert ids(rita, window_list) == public_window
    assert ids(rita, window_list + "?search=INTERNAL-WINDOW-DESCRIPTION") == []
    assert ids(agent, window_list + "?search=INTERNAL-WINDOW-DESCRIPTION") == public_window


def test_the_schema_reads_of_incidents_windows_and_alerts_are_all_walked(
    world: World, personas: dict[str, APIClient], requester: Any
) -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    walked = {urlsplit(url).path for url in _walk(world, personas["rita"], requester)}
    ids = {"incidents": "incident", "maintenance-windows": "maintenance-window", "alerts": "alert"}
    reads = 0
    for path, operations in schema["paths"].items():
        collection = path.removeprefix("/api/v1/").split("/")[0]
        if "get" not in operations or collection not in ids:
            continue
        concrete = path.replace("{id}", str(world.objects[ids[collection]][0]))
        assert concrete in walked, path
        reads += 1
    assert reads >= 6


def _when(value: str) -> datetime:
    parsed = parse_datetime(value)
    assert parsed is not None
    return parsed


def test_a_requester_reads_what_the_status_page_shows(world: World, personas: dict[str, APIClient]) -> None:
    status = personas["anonymous"].get("/status.json").json()
    incident = personas["rita"].get(f"/api/v1/incidents/{world.objects['incident'][0]}/").json()
    window = personas["rita"].get(f"/api/v1/maintenance-windows/{world.objects['maintenance-window'][0]}/").json()
    [on_page] = status["incidents"]
    assert on_page["title"] == incident["public_title"] == Incident.objects.get(pk=incident["id"]).public_title
    assert (on_page["severity"], on_page["status"]) == (incident["severity"], incident["status"])
    for name in ("detected_at", "updated_at"):
        assert _when(on_page[name]) == _when(incident[name])
    [window_on_page] = status["maintenance"]
    assert window_on_page["title"] == window["public_title"]
    assert window_on_page["status"] == window["status"]
    assert _when(window_on_page["starts_at"]) == _when(window["starts_at"])
    assert MaintenanceWindow.objects.filter(public=False).exists()  # and it is on neither
