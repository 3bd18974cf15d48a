"""A window's `starts_at` and `ends_at` say in the schema what the server refuses of them.

maintenance_validate refuses a start in the past when a window is scheduled or its start is moved (a minute's
grace), and an end that is not after the start; the schema offered any date-time for both, without a word, and
schemathesis warned that nearly every window it generated was refused ("Schema validation mismatch" for
POST /api/v1/maintenance-windows/). JSON Schema cannot relate a time to now or to another field: the descriptions
say it, and schemathesis.toml gives generated windows a future start and a later end.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
import yaml
from django.core.management import call_command

from tests.etags import if_match
from tests.maintenance.conftest import START

URL = "/api/v1/maintenance-windows/"


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = Path(tmp_path_factory.mktemp("schema")) / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path), stdout=io.StringIO())
    return yaml.safe_load(path.read_text())


def test_the_start_and_end_say_what_the_server_refuses(schema):
    components = schema["components"]["schemas"]
    for name in ("MaintenanceWindowRequest", "PatchedMaintenanceWindowRequest", "MaintenanceWindow"):
        fields = components[name]["properties"]
        assert "not in the past" in fields["starts_at"]["description"], name
        assert "moved" in fields["starts_at"]["description"], name
        assert fields["ends_at"]["description"].endswith("after starts_at."), name


@pytest.mark.django_db
class TestAsDescribed:
    def test_moving_the_start_into_the_past_is_a_400_naming_it(self, as_agent_at_any_time, make_window):
        window = make_window()
        with time_machine.travel(START - timedelta(days=1), tick=False):
            earlier = (START - timedelta(days=2)).isoformat()
            response = as_agent_at_any_time.patch(
                f"{URL}{window.pk}/", {"starts_at": earlier}, format="json", **if_match(window)
            )
        assert response.status_code == 400
        assert response.json() == {"starts_at": ["A maintenance window cannot start in the past."]}

    def test_a_start_that_has_passed_but_is_not_moved_does_not_stop_an_edit(self, as_agent_at_any_time, make_window):
        window = make_window()  # the scheduler has not started it (it does not run here)
        with time_machine.travel(START + timedelta(minutes=5), tick=False):
            body = {"title": "PostgreSQL 16.4", "starts_at": START.isoformat()}
            response = as_agent_at_any_time.patch(f"{URL}{window.pk}/", body, format="json", **if_match(window))
        assert response.status_code == 200, response.content

    def test_an_edit_whose_end_is_not_after_the_start_is_a_400_naming_ends_at(self, as_agent, make_window):
        window = make_window()
        response = as_agent.patch(
            f"{URL}{window.pk}/", {"ends_at": START.isoformat()}, format="json", **if_match(window)
        )
        assert response.status_code == 400
        assert response.json() == {"ends_at": ["The end must be after the start."]}
