"""The OpenAPI schema is valid, warning-free, and documents every error an operation can answer."""

from __future__ import annotations

import io
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
