"""What the OpenAPI schema says beyond what drf-spectacular reads from the views: the error responses every
operation can give (so clients and schemathesis know them all), and the shapes that several resources share."""

from __future__ import annotations

from functools import cache
from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from itsm.models import incidents, maintenance


class Refusal(serializers.Serializer):
    """A refusal that is not about one field: what was wrong, in words and as a code."""

    detail = serializers.CharField()
    code = serializers.CharField()


class TransitionConflict(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    # When the target is not an allowed next state; a rule that refuses an allowed one (a high incident reviewed
    # without a final post-mortem) is a 409 without it.
    allowed = serializers.ListField(child=serializers.CharField(), required=False)


@cache
def paginated(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    """The schema of one page of `serializer_class` items, for actions that paginate by hand."""
    return inline_serializer(
        name=f"Paginated{serializer_class.__name__.removesuffix('Serializer')}List",
        fields={
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


ERROR_SCHEMA = {
    "type": "object",
    "description": "An error. Validation errors (400) instead map each field name to a list of messages.",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "additionalProperties": True,
}

_COMMON = {
    "401": "Not signed in: send Authorization: Token <token>.",
    "403": "Signed in, but your role does not allow this.",
    "429": "Too many requests.",
    "503": "The database is unavailable; retry after the Retry-After header's seconds.",
}
_WRITE = {
    "503": "The database is unavailable (code database_unavailable), or read-only mode refuses writes (code "
    "read_only_mode, with the operator's reason and since when, e.g. during a restore); retry after the "
    "Retry-After header's seconds.",
}
_WITH_INPUT = {"400": "Invalid input: per-field messages."}
_DETAIL = {"404": "No such object, or not visible to you."}
_UPLOAD = {"413": "The request body is larger than an attachment may be (ITSM_ATTACHMENT_MAX_BYTES and the form)."}
# Every operation that takes If-Match (itsm.api.versioned.IF_MATCH) can answer these.
_IF_MATCH = {
    "412": "If-Match does not match the current ETag: someone changed the object (the response carries its ETag).",
    "428": "If-Match is missing.",
}


def document_empty_query_values(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """`?name=` means the same as leaving `name` out, for every query parameter (Django and DRF read an empty
    form value as "not given"; tests/api/test_schema.py holds every list endpoint to it). OpenAPI 3.0 says so with
    allowEmptyValue, without which `?created_before=` would contradict `format: date-time`."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    parameter["allowEmptyValue"] = True
    return result


def document_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            codes = dict(_COMMON)
            codes.update(_WITH_INPUT)  # malformed query parameters are a 400 on reads too
            if "{" in path:
                codes.update(_DETAIL)
            if method in ("post", "put", "patch", "delete"):
                codes.update(_WRITE)
            if method == "delete":
                codes["409"] = "Still referenced by other records."
            if any(p.get("in") == "header" and p.get("name") == "If-Match" for p in operation.get("parameters", [])):
                codes.update(_IF_MATCH)
            if "multipart/form-data" in operation.get("requestBody", {}).get("content", {}):
                codes.update(_UPLOAD)
            responses = operation.setdefault("responses", {})
            for code, description in codes.items():
                responses.setdefault(
                    code, {"description": description, "content": {"application/json": {"schema": ref}}}
                )
    return result


# The response components that requesters read in their public view (itsm.api.public_view): of these, only the
# model's PUBLIC_FIELDS are always there.
PUBLIC_VIEWS = {"Incident": incidents.PUBLIC_FIELDS, "MaintenanceWindow": maintenance.PUBLIC_FIELDS}


def document_public_views(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Requesters read incidents and windows in their public view, which leaves out every field but PUBLIC_FIELDS:
    those are `required` in the response schema (everyone reads them), the others are not, and say who reads them."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, shown in PUBLIC_VIEWS.items():
        component = schemas.get(name)
        if not component:
            continue
        component["required"] = [field for field in shown if field in component["properties"]]
        for field_name, field in component["properties"].items():
            if field_name not in shown and "$ref" not in field and "allOf" not in field:
                field["description"] = " ".join(
                    [field.get("description", ""), "Agents and admins only (left out for requesters)."]
                ).strip()
    return result
