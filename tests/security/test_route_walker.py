"""Walk every route of the project as every persona: nobody sees what is not theirs, nobody gets in without a
token except through the allow-list, and every role-gated operation refuses the roles below it.

The routes come from the URLconf itself (tests/security/routes.py), so a new route that is not classified there
fails test_every_route_is_classified instead of going unchecked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from itsm.models import Attachment, Comment, NotificationChannel, Ticket
from tests.security.conftest import World
from tests.security.routes import OPERATIONS, OWNED, SITES, STAFF_SEE_ALL, Op, Route, operations, project_routes

pytestmark = pytest.mark.django_db

USERS = ("rita", "oscar", "agent", "admin")
LIST_QUERIES = ("", "?page_size=200", "?search=RITA-RETITLED", "?search=OSCAR-RETITLED", "?ordering=-id")


def test_every_route_is_classified() -> None:
    found = operations()
    assert found - OPERATIONS.keys() == set(), "classify these operations in tests/security/routes.py"
    assert OPERATIONS.keys() - found == set(), "these classified operations no longer exist"


def _owner(world: World, target: str, value: Any) -> str | None:
    for name in ("rita", "oscar"):
        mine = getattr(world, name)
        if target == "attachment" and value == mine.internal_attachment:
            return "staff"  # on an internal note of the requester's ticket: the requester gets 404 too
        owned = {
            "ticket": mine.ticket,
            "rated-ticket": mine.rated_ticket,
            "notification": mine.notification,
            "attachment": mine.attachment,
        }
        if target in OWNED and value == owned.get(target, mine.channel):
            return name
    return None


def _body(response: Any) -> str:
    """A JSON body as JSON, a download as its bytes."""
    if response.streaming:
        return b"".join(response.streaming_content).decode(errors="replace")
    return json.dumps(response.json())


def _urls(route: Route, op: Op, world: World, suffix: bool = False) -> Iterator[tuple[str, Any]]:
    """The route's URL for every seeded object of its kind (or once, for routes without an id)."""
    extra = {"format": "json"} if suffix else {}
    if route.name in SITES:
        yield reverse(SITES[route.name][1]), None
        return
    if not route.kwargs:
        yield reverse(route.name, kwargs=extra or None), None
        return
    assert op.target is not None, f"{route.name} takes {route.kwargs}: give it a target in routes.py"
    for value in world.objects[op.target]:
        yield reverse(route.name, kwargs={route.kwargs[0]: value, **extra}), value


def _call(client: APIClient, method: str, url: str, **headers: Any) -> Any:
    if method in ("GET", "OPTIONS"):
        return getattr(client, method.lower())(url, **headers)
    return getattr(client, method.lower())(url, {}, format="json", **headers)


def test_without_a_token_every_operation_is_401_except_the_allow_list(world: World, settings: Any) -> None:
    settings.ITSM_ALERTMANAGER_TOKEN = "the-alertmanager-token"
    anonymous = APIClient()
    checked = 0
    for route in project_routes():
        for method in route.methods:
            op = OPERATIONS[(route.name, method)]
            for url, _ in _urls(route, op, world, suffix=route.format_suffix):
                response = _call(anonymous, method, url)
                checked += 1
                if op.who == "public":
                    assert response.status_code not in (401, 403), (method, url, response.status_code)
                    assert response.status_code < 500, (method, url, response.content[:300])
                elif op.who == "session":
                    assert response.status_code == 302, (method, url)
                    assert response["Location"].startswith(SITES[route.name][0]), (method, url)
                else:
                    assert response.status_code == 401, (method, url, response.status_code, response.content[:300])
                    assert response["Content-Type"] == "application/json", (method, url)
                    assert "WWW-Authenticate" in response, (method, url)
                if op.who not in ("public", "session", "bearer"):
                    # Not even the allowed methods and the fields of a form without a token. (The intake's payload
                    # is in the public schema anyway.)
                    assert _call(anonymous, "OPTIONS", url).status_code == 401, ("OPTIONS", url)
    assert checked > 100


def _expected_status(persona: str, method: str, op: Op, owner: str | None) -> int:
    staff = persona in ("agent", "admin")
    someone_elses = op.target in OWNED and owner is not None and owner != persona
    if someone_elses and not (staff and op.target in STAFF_SEE_ALL):
        return 404
    if op.who == "admin" and persona != "admin":
        return 403
    if op.who == "staff" and not staff:
        return 403
    return 200


def _read_everything(world: World, client: APIClient, persona: str) -> str:
    """GET every readable route as `persona`, checking each status; returns all the bodies together."""
    bodies = []
    for route in project_routes():
        op = OPERATIONS[(route.name, "GET")] if "GET" in route.methods else None
        if op is None or op.who in ("public", "session") or route.format_suffix:
            continue
        for url, value in _urls(route, op, world):
            for query in LIST_QUERIES if value is None else ("",):
                response = client.get(url + query)
                expected = _expected_status(persona, "GET", op, _owner(world, op.target or "", value))
                body = _body(response)
                assert response.status_code == expected, (persona, url + query, body[:300])
                bodies.append(body)
    return "\n".join(bodies)


def _forbidden(world: World, persona: str) -> list[str]:
    channels = [*world.rita.own_markers[-1:], *world.oscar.own_markers[-1:], world.rita.secret, world.oscar.secret]
    if persona in ("agent", "admin"):
        return channels  # staff see every ticket and notification, but no one's channel
    other = world.oscar if persona == "rita" else world.rita
    return [*other.ticket_markers, *other.own_markers, other.secret, *world.internal_markers, *world.private_markers]


def _required(world: World, persona: str) -> list[str]:
    """What each persona must see, so the walk is known to have reached the data it checks."""
    if persona in ("agent", "admin"):
        return [
            *world.rita.ticket_markers,
            *world.oscar.ticket_markers,
            *world.internal_markers,
            *world.public_markers,
        ]
    mine = getattr(world, persona)
    return [*mine.ticket_markers, *mine.own_markers, mine.secret, *world.public_markers]


@pytest.mark.parametrize("persona", USERS)
def test_each_persona_sees_nothing_outside_its_visibility_through_any_route(
    world: World, personas: dict[str, APIClient], persona: str
) -> None:
    everything = _read_everything(world, personas[persona], persona)
    leaked = [marker for marker in _forbidden(world, persona) if marker in everything]
    assert leaked == [], f"{persona} can read {leaked}"
    missing = [marker for marker in _required(world, persona) if marker not in everything]
    assert missing == [], f"{persona} should see {missing}"


def _state(world: World) -> Any:
    return (
        list(Ticket.objects.order_by("id").values_list("id", "version", "title", "status")),
        Comment.objects.count(),
        list(Attachment.objects.order_by("id").values_list("id", "file")),
        list(NotificationChannel.objects.order_by("id").values_list("id", "target", "enabled")),
    )


@pytest.mark.parametrize("persona", USERS)
def test_no_write_reaches_another_users_objects_or_passes_a_role_gate(
    world: World, personas: dict[str, APIClient], persona: str
) -> None:
    """Every write that the persona may not make is refused (404 for what it cannot see, 403 for what its role
    may not do) and changes nothing."""
    before = _state(world)
    refused = 0
    for (name, method), op in OPERATIONS.items():
        if method == "GET" or op.who in ("public", "session", "bearer"):
            continue
        route = next(route for route in project_routes() if route.name == name and not route.format_suffix)
        for url, value in _urls(route, op, world):
            expected = _expected_status(persona, method, op, _owner(world, op.target or "", value))
            if expected == 200:
                continue
            response = _call(personas[persona], method, url)
            refused += 1
            assert response.status_code == expected, (persona, method, url, response.content[:300])
            assert response["Content-Type"] == "application/json", (persona, method, url)
    assert _state(world) == before
    assert refused > 0 if persona != "admin" else True
