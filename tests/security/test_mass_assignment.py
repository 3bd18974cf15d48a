"""Mass assignment: every read-only field of every writable endpoint, sent with a hostile value, is ignored (or
refused with a 400), never written.

The read-only fields come from the OpenAPI schema itself: the fields a 2xx response shows that its request body
does not take. So a field added later is covered at once, and a writable operation without a body in WRITES
fails test_every_writable_operation_is_covered.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from itsm.models import NotificationChannel, Ticket
from itsm.services.tickets import ticket_transition
from tests.factories import make_ticket
from tests.security.conftest import World

pytestmark = pytest.mark.django_db

HOSTILE_TIME = "2001-02-03T04:05:06Z"
HOSTILE_NUMBER = 987654
# Not resources that are stored and read back: a login's token and the intake's summary of what it did.
NOT_STORED = {("post", "/api/v1/auth/token/"), ("post", "/api/v1/alerts/alertmanager/")}


def _later(days: int, hours: int = 0) -> str:
    return (timezone.now() + timedelta(days=days, hours=hours)).isoformat()


# (method, path) -> (persona, body). {id} is filled with the seeded object of the path's collection.
WRITES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("post", "/api/v1/tickets/"): ("rita", {"title": "New", "description": "d"}),
    ("put", "/api/v1/tickets/{id}/"): ("rita", {"title": "Put", "description": "d"}),
    ("patch", "/api/v1/tickets/{id}/"): ("rita", {"title": "Patched"}),
    ("post", "/api/v1/tickets/{id}/comments/"): ("rita", {"body": "A comment"}),
    ("post", "/api/v1/tickets/{id}/transition/"): ("agent", {"to": "open"}),
    ("post", "/api/v1/tickets/{id}/rating/"): ("rita", {"score": 4, "comment": "Quick"}),
    ("post", "/api/v1/incidents/"): ("agent", {"title": "Declared", "severity": "low"}),
    ("put", "/api/v1/incidents/{id}/"): ("agent", {"title": "Put", "severity": "low"}),
    ("patch", "/api/v1/incidents/{id}/"): ("agent", {"title": "Patched"}),
    ("post", "/api/v1/incidents/{id}/transition/"): ("agent", {"to": "acknowledged"}),
    ("post", "/api/v1/incidents/{id}/timeline/"): ("agent", {"body": "A note"}),
    ("put", "/api/v1/incidents/{id}/postmortem/"): ("agent", {"summary": "What happened"}),
    ("post", "/api/v1/incidents/{id}/postmortem/action-items/"): ("agent", {"title": "Add a check"}),
    ("post", "/api/v1/maintenance-windows/"): (
        "agent",
        {"title": "New", "starts_at": _later(3), "ends_at": _later(3, 1)},
    ),
    ("put", "/api/v1/maintenance-windows/{id}/"): (
        "agent",
        {"title": "Put", "starts_at": _later(4), "ends_at": _later(4, 1)},
    ),
    ("patch", "/api/v1/maintenance-windows/{id}/"): ("agent", {"title": "Patched"}),
    ("post", "/api/v1/maintenance-windows/{id}/transition/"): ("agent", {"to": "cancelled"}),
    ("post", "/api/v1/services/"): ("admin", {"name": "New", "slug": "new"}),
    ("put", "/api/v1/services/{id}/"): ("admin", {"name": "Put", "slug": "put"}),
    ("patch", "/api/v1/services/{id}/"): ("admin", {"description": "Patched"}),
    ("post", "/api/v1/teams/"): ("admin", {"name": "New", "slug": "new", "members": []}),
    ("put", "/api/v1/teams/{id}/"): ("admin", {"name": "Put", "slug": "put", "members": []}),
    ("patch", "/api/v1/teams/{id}/"): ("admin", {"name": "Patched"}),
    ("post", "/api/v1/backups/"): ("admin", {"kind": "database"}),
    ("post", "/api/v1/notification-channels/"): ("rita", {"channel": "email", "target": "rita2@example.com"}),
    ("put", "/api/v1/notification-channels/{id}/"): ("rita", {"channel": "email", "target": "rita3@example.com"}),
    ("patch", "/api/v1/notification-channels/{id}/"): ("rita", {"enabled": False}),
    ("post", "/api/v1/notification-channels/{id}/rotate-secret/"): ("rita", {"window_hours": 1}),
}
COLLECTION_OBJECTS = {
    "tickets": "ticket",
    "incidents": "incident",
    "maintenance-windows": "maintenance-window",
    "services": "service",
    "teams": "team",
    "notification-channels": "notification-channel",
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _properties(schema: dict[str, Any], reference: dict[str, Any] | None) -> dict[str, Any] | None:
    if not reference or "$ref" not in reference:
        return None
    component = schema["components"]["schemas"][reference["$ref"].rsplit("/", 1)[-1]]
    return component.get("properties", {})


def read_only_fields(schema: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(method, path) -> {field: its response schema} for every write whose response shows fields its body does
    not take."""
    found = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in ("post", "put", "patch"):
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            ok = sorted(code for code in operation["responses"] if code.startswith("2"))
            content = operation["responses"][ok[0]].get("content", {}) if ok else {}
            shown = _properties(schema, content.get("application/json", {}).get("schema"))
            taken = _properties(schema, body)
            if shown and taken is not None and set(shown) - set(taken):
                found[(method, path)] = {name: shown[name] for name in set(shown) - set(taken)}
    return found


def test_every_writable_operation_is_covered(schema: dict[str, Any]) -> None:
    writable = set(read_only_fields(schema)) - NOT_STORED
    assert writable - WRITES.keys() == set(), "give these operations a valid body in WRITES"
    assert WRITES.keys() - writable == set(), "these operations no longer exist or have no read-only fields"


# Fields that the rules govern (lifecycles, SLA clocks, ownership, audit): whatever else changes, these stay
# read-only. A serializer change that made one writable would also drop it from the schema-derived set above.
MUST_STAY_READ_ONLY = {
    ("post", "/api/v1/tickets/"): {
        "id",
        "status",
        "requester",
        "created_at",
        "updated_at",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "response_due_at",
        "resolution_due_at",
        "sla_status",
        "sla_policy",
    },
    ("post", "/api/v1/tickets/{id}/comments/"): {"id", "ticket", "author", "created_at"},
    ("post", "/api/v1/tickets/{id}/rating/"): {"id", "ticket", "rated_by", "created_at"},
    ("post", "/api/v1/incidents/"): {
        "id",
        "status",
        "source",
        "created_by",
        "acknowledged_at",
        "resolved_at",
        "response_due_at",
        "response_target_missed",
        "escalation_level",
        "updated_at",
    },
    ("post", "/api/v1/maintenance-windows/"): {
        "id",
        "status",
        "series",
        "created_by",
        "created_at",
        "started_at",
        "completed_at",
        "backup",
        "verification",
    },
    ("put", "/api/v1/incidents/{id}/postmortem/"): {"author", "finalized_at", "updated_at"},
    ("post", "/api/v1/backups/"): {"id", "status", "requested_by", "local_path", "s3_key", "sha256", "verified_ok"},
    ("post", "/api/v1/notification-channels/"): {"id", "secret", "created_at"},
    ("post", "/api/v1/services/"): {"id"},
}


def test_the_fields_the_rules_govern_stay_read_only(schema: dict[str, Any]) -> None:
    fields = read_only_fields(schema)
    writable = {
        operation: sorted(must - set(fields.get(operation, {}))) for operation, must in MUST_STAY_READ_ONLY.items()
    }
    assert {operation: names for operation, names in writable.items() if names} == {}


def _hostile(name: str, spec: dict[str, Any], world: World, other_user: int) -> Any:
    """A value for a read-only field that would be visible if it were written: another user, another ticket, a
    far past time, a non-default state."""
    kind = spec.get("type")
    if "enum" in spec or "allOf" in spec or "oneOf" in spec:
        return "closed" if "ticket" not in name else other_user  # status-like fields: a late state
    if spec.get("format") == "date-time":
        return HOSTILE_TIME
    if kind == "integer":
        if name in ("requester", "created_by", "author", "actor", "requested_by"):
            return other_user
        return world.oscar.ticket if name == "ticket" else HOSTILE_NUMBER
    if kind == "boolean":
        return True
    if kind == "array":
        return [HOSTILE_NUMBER]
    if kind == "object":
        return {"hacked": True}
    return "HACKED"


def _written(value: Any, hostile: Any) -> bool:
    if hostile == HOSTILE_TIME:
        return isinstance(value, str) and value.startswith("2001-02-03")
    if isinstance(hostile, list):
        return isinstance(value, list) and HOSTILE_NUMBER in value
    if hostile is True:
        return False  # booleans are compared against the object before the write instead
    return bool(value == hostile)


def _url(path: str, world: World) -> str:
    collection = path.split("/")[3]
    if "{id}" not in path:
        return path
    value = world.rita.ticket if collection == "tickets" else world.objects[COLLECTION_OBJECTS[collection]][0]
    if path.endswith("/rating/"):  # a ticket of rita's that she closed and has not rated
        rita = Ticket.objects.get(pk=world.rita.ticket).requester
        value = make_ticket(rita, title="To rate").pk
        ticket_transition(ticket_id=value, actor=rita, to="closed")
    if collection == "notification-channels":
        value = world.rita.channel
    return path.replace("{id}", str(value))


def _reread(client: APIClient, url: str, method: str, response: Any) -> Any:
    """The object as stored after the write, read back through the API."""
    body = response.json()
    if url.endswith(("/comments/", "/timeline/")):
        items = client.get(url + "?page_size=200").json()["results"]
        return next(item for item in items if item["id"] == body["id"])
    if url.endswith("/action-items/"):
        return body
    if url.endswith(("/postmortem/", "/rating/")):
        return client.get(url).json()
    if url.endswith("/transition/"):
        return client.get(url.removesuffix("transition/")).json()
    if url.endswith("/rotate-secret/"):
        return client.get(url.removesuffix("rotate-secret/")).json()
    detail = url if method != "post" else f"{url}{body['id']}/"
    return client.get(detail).json()


def _if_match(schema: dict[str, Any], client: APIClient, method: str, path: str, url: str) -> dict[str, str]:
    """The ETag of the object written, as a client sends it, where the operation takes If-Match."""
    parameters = schema["paths"][path][method].get("parameters", [])
    if not any(parameter["name"] == "If-Match" for parameter in parameters):
        return {}
    etag = client.get(url.removesuffix("transition/").removesuffix("rotate-secret/")).headers.get("ETag")
    return {"HTTP_IF_MATCH": etag} if etag else {}  # a post-mortem not written yet has none


@pytest.mark.parametrize(("method", "path"), sorted(WRITES))
def test_read_only_fields_sent_in_a_write_are_never_written(
    schema: dict[str, Any], world: World, personas: dict[str, APIClient], other_requester: Any, method: str, path: str
) -> None:
    persona, body = WRITES[(method, path)]
    client = personas[persona]
    fields = read_only_fields(schema)[(method, path)]
    hostile = {name: _hostile(name, spec, world, other_requester.pk) for name, spec in fields.items()}
    url = _url(path, world)
    headers = _if_match(schema, client, method, path, url)
    before = client.get(url).json() if method != "post" or "{id}" in path else {}
    response = getattr(client, method)(url, {**body, **hostile}, format="json", **headers)
    if response.status_code == 400:
        refused = set(response.json())
        assert refused <= set(hostile), f"{method} {url} refused valid fields: {response.content[:500]!r}"
        return
    assert response.status_code in (200, 201, 202), (method, url, response.content[:500])
    stored = _reread(client, url, method, response)
    for shown in (response.json(), stored):
        written = [name for name in hostile if name in shown and _written(shown[name], hostile[name])]
        flipped = [
            name
            for name, value in hostile.items()
            if value is True and name in shown and name in before and shown[name] is True and before[name] is not True
        ]
        assert written + flipped == [], f"{method} {url} wrote read-only {written + flipped}: {json.dumps(shown)[:500]}"


def test_fields_the_api_does_not_show_are_not_written_either(world: World, personas: dict[str, APIClient]) -> None:
    """The ticket's version (its ETag), a channel's owner, and a user's privileges are not fields of any body."""
    rita = personas["rita"]
    url = f"/api/v1/tickets/{world.rita.ticket}/"
    etag = rita.get(url).headers["ETag"]
    hostile = {"version": HOSTILE_NUMBER, "requester_id": 1, "is_superuser": True, "is_staff": True, "user": 1}
    response = rita.patch(url, {"title": "Fine", **hostile}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 200, response.content
    assert Ticket.objects.get(pk=world.rita.ticket).version != HOSTILE_NUMBER
    channel_url = f"/api/v1/notification-channels/{world.rita.channel}/"
    channel = rita.patch(channel_url, hostile, format="json", HTTP_IF_MATCH=rita.get(channel_url).headers["ETag"])
    assert channel.status_code == 200, channel.content
    assert NotificationChannel.objects.get(pk=world.rita.channel).user.get_username() == "rita"
    me = Ticket.objects.get(pk=world.rita.ticket).requester
    assert not me.is_superuser
    assert not me.is_staff
