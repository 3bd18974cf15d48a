"""The OpenAPI schema is valid, warning-free, and documents every error an operation can answer."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = Path(tmp_path_factory.mktemp("schema")) / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path), stdout=io.StringIO())
    return yaml.safe_load(path.read_text())


def test_the_schema_generates_without_warnings_and_validates(schema):
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/tickets/" in schema["paths"]


def test_every_operation_documents_its_error_responses(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"400", "401", "403", "429", "503"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)


def test_writes_document_the_503_of_read_only_mode_and_reads_do_not(schema):
    tickets = schema["paths"]["/api/v1/tickets/"]
    assert "read_only_mode" in tickets["post"]["responses"]["503"]["description"]
    assert "read_only_mode" not in tickets["get"]["responses"]["503"]["description"]


def test_ticket_edits_document_the_if_match_rules(schema):
    patch = schema["paths"]["/api/v1/tickets/{id}/"]["patch"]
    assert {"412", "428"} <= set(patch["responses"])
    assert any(parameter["name"] == "If-Match" for parameter in patch["parameters"])


def test_transition_documents_the_409(schema):
    assert "409" in schema["paths"]["/api/v1/tickets/{id}/transition/"]["post"]["responses"]


@pytest.mark.django_db
def test_the_schema_and_docs_are_served(anonymous):
    assert anonymous.get("/api/schema/").status_code == 200
    docs = anonymous.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def _list_reads(schema: dict) -> list[tuple[str, list[dict]]]:
    """Every GET without a path parameter, with its query parameters."""
    return [
        (path, [p for p in operations["get"].get("parameters", []) if p["in"] == "query"])
        for path, operations in schema["paths"].items()
        if "get" in operations and "{" not in path
    ]


@pytest.mark.django_db
def test_an_empty_query_value_means_not_given_as_the_schema_says(schema, as_admin):
    checked = 0
    for path, parameters in _list_reads(schema):
        for parameter in parameters:
            assert parameter["allowEmptyValue"] is True, (path, parameter["name"])
            response = as_admin.get(f"{path}?{parameter['name']}=")
            assert response.status_code == 200, (path, parameter["name"], response.content[:300])
            checked += 1
    assert checked > 50


def _query_parameter(schema: dict, path: str, name: str) -> dict:
    return next(p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name)


def test_id_filters_are_positive_integers_and_boolean_filters_booleans(schema):
    for path, parameters in _list_reads(schema):
        for parameter in parameters:
            if parameter["name"] in ("assignee", "requester", "service", "team", "series", "incident", "commander"):
                assert parameter["schema"]["type"] == "integer", (path, parameter)
                assert parameter["schema"]["minimum"] == 1, (path, parameter)
    assert _query_parameter(schema, "/api/v1/notifications/", "urgent")["schema"] == {"type": "boolean"}
    assert _query_parameter(schema, "/api/v1/notification-channels/", "enabled")["schema"] == {"type": "boolean"}


def test_report_periods_and_on_call_moments_are_date_times(schema):
    for report in ("incidents", "tickets"):
        for name in ("from", "to"):
            assert _query_parameter(schema, f"/api/v1/reports/{report}/", name)["schema"]["format"] == "date-time"
    page = schema["components"]["schemas"]["PaginatedTeamOnCallList"]
    assert "at" in page["required"]
    assert page["properties"]["results"]["items"] == {"$ref": "#/components/schemas/TeamOnCall"}


def test_the_idempotency_key_header_documents_what_the_server_takes(schema):
    post = schema["paths"]["/api/v1/tickets/"]["post"]
    header = next(p for p in post["parameters"] if p["name"] == "Idempotency-Key")
    assert header["schema"]["minLength"] == 1
    assert header["schema"]["maxLength"] == 255


def test_the_alertmanager_intake_documents_what_it_takes(schema):
    """At least one alert; text without NUL (PostgreSQL cannot store it), also in label values."""
    schemas = schema["components"]["schemas"]
    assert schemas["AlertmanagerPayloadRequest"]["properties"]["alerts"]["minItems"] == 1
    alert = schemas["AlertmanagerAlertRequest"]["properties"]
    assert alert["fingerprint"]["pattern"] == "^[^\\u0000]+$"
    # Blank or text without NUL, and "" is only the first (oneOf).
    assert alert["labels"]["additionalProperties"] == {
        "oneOf": [
            {"type": "string", "maxLength": 10000, "pattern": "^[^\\u0000]+$"},
            {"type": "string", "maxLength": 0},
        ]
    }
    # What Alertmanager sent, often "": not a URI.
    assert "format" not in schemas["Alert"]["properties"]["generator_url"]


def test_a_channel_target_is_documented_per_kind(schema):
    body = schema["paths"]["/api/v1/notification-channels/"]["post"]["requestBody"]["content"]["application/json"]
    assert (
        body
        == schema["paths"]["/api/v1/notification-channels/{id}/"]["put"]["requestBody"]["content"]["application/json"]
    )
    schemas = schema["components"]["schemas"]
    shapes = [
        schemas[ref["$ref"].rsplit("/", 1)[1]] for ref in schemas[body["schema"]["$ref"].rsplit("/", 1)[1]]["oneOf"]
    ]
    targets = {str(shape["properties"]["channel"]): shape["properties"]["target"] for shape in shapes}
    documented = sorted(target.get("format", target.get("pattern")) for target in targets.values())
    assert documented == ["^https?://[^\\u0000]*$", "email"]  # a URL without NUL, which the server refuses


def test_a_promql_check_documents_that_its_expression_has_no_nul(schema):
    checks = schema["components"]["schemas"]["MaintenanceWindowRequest"]["properties"]["checks"]
    promql = next(shape for shape in checks["items"]["oneOf"] if "expr" in shape["properties"])
    pattern = promql["properties"]["expr"]["pattern"]
    assert re.fullmatch(pattern, "up == 1")
    assert not re.search(pattern, "up\x00")
    assert not re.search(pattern, "  ")
