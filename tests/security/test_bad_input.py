"""Bodies that are JSON but not what any field can hold are a 400 naming the problem, never a 500 with a
traceback: nesting 1,500 levels deep (CPython's decoder recursed until RecursionError), numbers beyond a float
(`1e999` decoded to infinity and reached the database as an id), and ids that are not whole numbers (`1.5` was taken
as 1, `true` as 1)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from itsm.api.parsers import MAX_DEPTH, too_deep
from itsm.models import Service, Ticket

pytestmark = pytest.mark.django_db

NESTED = "[" * 1500 + "]" * 1500
TOKEN = "bad-input-intake-token"


def post_raw(client: APIClient, path: str, body: str, **headers: Any) -> Any:
    return client.generic("POST", path, body, content_type="application/json", **headers)


@pytest.mark.parametrize(
    "path", ["/api/v1/auth/token/", "/api/v1/alerts/alertmanager/", "/api/v1/tickets/", "/api/v1/incidents/"]
)
def test_a_body_nested_1500_levels_deep_is_a_400_on_every_post(path: str, client_for, agent, settings) -> None:
    settings.ITSM_ALERTMANAGER_TOKEN = TOKEN
    if "alerts" in path:  # Alertmanager's bearer token, not an agent's
        response = post_raw(APIClient(), path, NESTED, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    else:
        response = post_raw(client_for(agent), path, NESTED)
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == f"JSON parse error - nested deeper than {MAX_DEPTH} levels"


def test_a_body_nested_just_past_the_limit_is_refused_and_at_the_limit_it_reaches_the_view(client_for, agent) -> None:
    client = client_for(agent)
    at_limit = '{"title": "x", "description": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"
    past = '{"title": "x", "description": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}"
    assert post_raw(client, "/api/v1/tickets/", past).json()["detail"].endswith(f"deeper than {MAX_DEPTH} levels")
    assert post_raw(client, "/api/v1/tickets/", at_limit).json() == {"description": ["Not a valid string."]}


@pytest.mark.parametrize("number", ["1e999", "-1e999", "1E400"])
def test_a_number_beyond_a_float_is_a_400(number: str, client_for, agent) -> None:
    response = post_raw(client_for(agent), "/api/v1/tickets/", f'{{"title": "t", "service": {number}}}')
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error - Number out of range")


@pytest.mark.parametrize(("value", "kind"), [(1.5, "float"), (1.0, "float"), (True, "bool"), ([1], "list")])
def test_an_id_that_is_not_a_whole_number_is_a_400_naming_the_field(value: Any, kind: str, client_for, agent):
    service = Service.objects.create(name="Mail")
    client = client_for(agent)
    response = client.post("/api/v1/tickets/", {"title": "t", "description": "d", "service": value}, format="json")
    assert response.status_code == 400
    assert response.json() == {"service": [f"Incorrect type. Expected pk value, received {kind}."]}
    assert not Ticket.objects.exists()
    created = client.post("/api/v1/tickets/", {"title": "t", "description": "d", "service": service.pk}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["service"] == service.pk


def test_an_id_in_a_list_that_is_not_a_whole_number_is_a_400(client_for, agent) -> None:
    service = Service.objects.create(name="Mail")
    body = {"title": "Mail is down", "severity": "low", "services": [service.pk, 1.5]}
    response = client_for(agent).post("/api/v1/incidents/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"services": ["Incorrect type. Expected pk value, received float."]}


def test_depth_is_measured_without_recursion() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert too_deep(deep)
    assert not too_deep({"a": [{"b": 1}]}, limit=3)
    assert too_deep({"a": [{"b": []}]}, limit=3)
