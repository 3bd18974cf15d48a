"""The incident list's bulk actions in the admin: each incident moved through incident_transition, a refusal a
message beside the others' count."""

from __future__ import annotations

from typing import Any

from django.test import Client

from itsm.models import Incident
from itsm.services.incidents import incident_create, incident_transition
from tests.conftest import page_text


def test_acknowledging_a_selection_lists_the_incidents_the_lifecycle_refuses(operator: Client, agent: Any) -> None:
    fresh = incident_create(actor=agent, title="Mail slow", severity="low")
    done = incident_create(actor=agent, title="Old outage", severity="low")
    incident_transition(incident_id=done.pk, actor=agent, to="resolved")
    response = operator.post(
        "/admin/itsm/incident/", {"action": "acknowledge", "_selected_action": [fresh.pk, done.pk]}, follow=True
    )
    assert response.status_code == 200
    text = page_text(response)
    assert "1 incident(s) moved to acknowledged." in text
    assert f"INC-{done.pk}: Cannot move from &#x27;resolved&#x27; to &#x27;acknowledged&#x27;." in text
    assert dict(Incident.objects.values_list("pk", "status")) == {fresh.pk: "acknowledged", done.pk: "resolved"}
