"""Every text field of a request body says in the schema that it refuses NUL, as the server does.

DRF's CharField refuses a NUL character in every text field ("Null characters are not allowed.", since PostgreSQL
cannot store it); drf-spectacular documented that only where a field carried a RegexValidator of its own, so
schemathesis sent `{"to": "acknowledged", "note": "\\u0000"}` to an incident's transition as schema-valid and got a
400 (ST202). itsm.api.strict.NulFreeText documents it for every CharField of a request body.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from django.core.management import call_command

from itsm.services.incidents import incident_create
from tests.etags import if_match
from tests.factories import make_ticket

# What a string's format already rules out NUL for (an address, a URL, a time, an id), and a file of a multipart
# upload, which is bytes rather than text (NUL and all).
FORMATS_WITHOUT_NUL = {"email", "uri", "date-time", "date", "uuid", "ipv4", "ipv6", "binary"}
# Text with NUL that a pattern of a field's own could otherwise take.
WITH_NUL = ("printer\x00jam", "\x00", "https://printer\x00jam")


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = Path(tmp_path_factory.mktemp("schema")) / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path), stdout=io.StringIO())
    return yaml.safe_load(path.read_text())


def _strings(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every string schema under `node` (properties, items, additionalProperties, oneOf branches), with its place."""
    if isinstance(node, dict):
        if node.get("type") == "string":
            yield where, node
        for key, child in node.items():
            yield from _strings(child, f"{where}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _strings(child, f"{where}/{index}")


def _request_component(schema: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    ref = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_every_text_field_of_a_request_body_documents_that_it_refuses_nul(schema):
    undocumented = []
    checked = 0
    for name, component in schema["components"]["schemas"].items():
        if not name.endswith("Request"):
            continue
        for where, string in _strings(component, name):
            if string.get("maxLength") == 0 or "enum" in string or string.get("format") in FORMATS_WITHOUT_NUL:
                continue  # "" (the blank branch of a oneOf), a choice, or a format that holds no NUL
            checked += 1
            pattern = string.get("pattern")
            if pattern is None or any(re.search(pattern, text) for text in WITH_NUL):
                undocumented.append(where)
    assert undocumented == []
    assert checked > 40  # titles, descriptions, notes, comments, post-mortem sections, names, logins...


def test_the_transition_note_takes_blank_and_text_but_not_nul(schema):
    for path in ("/api/v1/incidents/{id}/transition/", "/api/v1/tickets/{id}/transition/"):
        note = _request_component(schema, path, "post")["properties"]["note"]
        for accepted in ("", "Paged the DBA", " "):
            jsonschema.validate(accepted, note)  # oneOf: exactly one branch
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate("\\\x00 [", note)


@pytest.mark.django_db
class TestTheServerRefusesWhatTheSchemaSays:
    def test_nul_in_an_incident_transition_note_is_a_400_naming_it(self, as_agent, agent):
        incident = incident_create(actor=agent, title="API answers 502", severity="medium")
        url = f"/api/v1/incidents/{incident.pk}/transition/"
        response = as_agent.post(url, {"to": "acknowledged", "note": "\\\x00 ["}, format="json")
        assert response.status_code == 400
        assert response.json() == {"note": ["Null characters are not allowed."]}
        assert (
            as_agent.post(url, {"to": "acknowledged", "note": ""}, format="json", **if_match(incident)).status_code
            == 200
        )

    def test_nul_in_a_ticket_transition_note_or_a_comment_is_a_400_naming_it(self, as_agent, requester):
        ticket = make_ticket(requester, title="Printer jams")
        response = as_agent.post(
            f"/api/v1/tickets/{ticket.pk}/transition/", {"to": "in_progress", "note": "\x00"}, format="json"
        )
        assert response.status_code == 400
        assert response.json() == {"note": ["Null characters are not allowed."]}
        response = as_agent.post(f"/api/v1/tickets/{ticket.pk}/comments/", {"body": "a\x00b"}, format="json")
        assert response.status_code == 400
        assert response.json() == {"body": ["Null characters are not allowed."]}
