"""An incident's edit (PUT, PATCH) documents what the server takes.

`detected_at` is fixed once the incident exists: IncidentSerializer.validate_detected_at refuses any other time on
an edit, yet the edit's schema offered any date-time, and nearly every body schemathesis made was refused
(warning "Schema validation mismatch" for PUT /api/v1/incidents/{id}/). The edit's body (IncidentUpdateSerializer)
no longer offers it; declaring an incident still takes it, described as not in the future.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.utils import timezone

from itsm.models import Incident
from itsm.services.incidents import incident_create
from tests.etags import if_match
from tests.factories import ServiceFactory, make_ticket

URL = "/api/v1/incidents/"


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = Path(tmp_path_factory.mktemp("schema")) / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path), stdout=io.StringIO())
    return yaml.safe_load(path.read_text())


def _body_fields(schema: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    ref = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]


def test_an_edit_does_not_offer_the_detection_time_and_a_declaration_says_it_is_not_in_the_future(schema):
    for method in ("put", "patch"):
        edit = _body_fields(schema, "/api/v1/incidents/{id}/", method)
        assert "detected_at" not in edit, method
        assert set(edit) == {
            "title",
            "summary",
            "severity",
            "services",
            "commander",
            "linked_tickets",
            "public",
            "public_title",
        }, method
    declared = _body_fields(schema, URL, "post")["detected_at"]
    assert declared["format"] == "date-time"
    assert "not in the future" in declared["description"]


@pytest.mark.django_db
class TestAnEditTakesWhatItsSchemaOffers:
    def _values(self, agent: Any, requester: Any) -> dict[str, Any]:
        """A valid value for each field an edit's schema may offer; a past time for `detected_at`, as a date-time
        in the schema would allow."""
        return {
            "title": "Checkout is slow",
            "summary": "p99 at 2 s",
            "severity": "low",
            "services": [ServiceFactory.create().pk],
            "commander": agent.pk,
            "linked_tickets": [make_ticket(requester, title="Checkout hangs").pk],
            "detected_at": "2020-01-01T00:00:00Z",
            "public": True,
            "public_title": "Checkout is slow for some",
        }

    @pytest.mark.parametrize("method", ["put", "patch"])
    def test_a_body_with_every_documented_field_goes_through(self, schema, method, as_agent, agent, requester):
        incident = incident_create(actor=agent, title="API answers 502", severity="medium")
        values = self._values(agent, requester)
        body = {name: values[name] for name in _body_fields(schema, "/api/v1/incidents/{id}/", method)}
        response = getattr(as_agent, method)(f"{URL}{incident.pk}/", body, format="json", **if_match(incident))
        assert response.status_code == 200, response.content
        assert response.json()["title"] == "Checkout is slow"

    def test_the_detection_time_sent_back_unchanged_is_taken_and_another_is_a_400_naming_it(self, as_agent, agent):
        incident = incident_create(actor=agent, title="API answers 502", severity="medium")
        read = as_agent.get(f"{URL}{incident.pk}/").json()
        unchanged = {"title": "API answers 503", "detected_at": read["detected_at"]}
        assert as_agent.patch(f"{URL}{incident.pk}/", unchanged, format="json", **if_match(incident)).status_code == 200
        earlier = (incident.detected_at - timedelta(hours=1)).isoformat()
        response = as_agent.patch(f"{URL}{incident.pk}/", {"detected_at": earlier}, format="json", **if_match(incident))
        assert response.status_code == 400
        assert response.json() == {"detected_at": ["The detection time is fixed once the incident exists."]}
        assert Incident.objects.get(pk=incident.pk).detected_at == incident.detected_at

    def test_a_declaration_detected_in_the_future_is_a_400_naming_it(self, as_agent):
        future = (timezone.now() + timedelta(hours=1)).isoformat()
        response = as_agent.post(URL, {"title": "Checkout down", "detected_at": future}, format="json")
        assert response.status_code == 400
        assert response.json() == {"detected_at": ["An incident cannot be detected in the future."]}
