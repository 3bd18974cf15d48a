"""Input taken as exactly what the OpenAPI schema says, where Django, django-filter and DRF are lenient.

- An id filter (`?assignee=7`) is a whole number from 1: django-filter's NumberFilter takes any decimal up to
  1e50 (`?assignee=2.5` or `?team=1e300` were a 400 the schema, which called them numbers, did not announce).
- A boolean filter (`?urgent=true`) is `true` or `false`: django-filter's BooleanFilter reads anything else as
  "no filter", so `?urgent=yes-please` silently returned everything.
- A text field takes text: DRF's CharField turns a JSON number into a string (`"title": 42` became "42"), and
  checks max_length after trimming spaces, so a body one space over the documented maxLength was taken. A list of
  ids takes a list: DRF read `"notify_users": {}` as an empty list.
- A text filter says in the schema that it refuses NUL and its max_length; `?search=` errors name the parameter.
- Every text field of a request body says in the schema that it refuses NUL, as DRF's CharField does for all of
  them (NulFreeText below): drf-spectacular documented only fields that carried a RegexValidator.

Found by schemathesis (tests/security/test_schemathesis.py, docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import django_filters
from django import forms
from django.core.validators import ProhibitNullCharactersValidator, RegexValidator
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import filters, serializers
from rest_framework.request import Request

# Ids are BigAutoField primary keys.
MAX_ID = 2**63 - 1
# Text without a NUL character, which PostgreSQL cannot store or compare (a 400, not a 500).
NO_NUL = "^[^\\x00]*$"
# The same for a text field of a body, as drf-spectacular writes it: "+", not "*", because for a field that may be
# blank it documents `oneOf` this pattern or "" (maxLength 0), which "" must not match twice. DRF takes "" (where
# allowed) before it runs validators.
NO_NUL_TEXT = "^[^\\u0000]+$"


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """`?field=<id>`: a whole number from 1; an id that does not exist matches nothing."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)

    def get_max_validator(self) -> None:
        return None  # max_value above is the bound


class StrictBooleanField(forms.Field):
    """`true` or `false` (any case); empty means not given. Anything else is invalid, not ignored."""

    widget = forms.TextInput
    default_error_messages = {"invalid": "Use true or false."}

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text not in ("true", "false"):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return text == "true"


@extend_schema_field({"type": "boolean"})
class BooleanFilter(django_filters.BooleanFilter):
    """`?field=true|false`."""

    field_class = StrictBooleanField


# A writable field of these kinds takes a JSON value of this type (or null where the field allows it).
_JSON_TYPES: tuple[tuple[type[serializers.Field], type, str], ...] = (
    (serializers.CharField, str, "Not a valid string."),  # and e-mail, slug, URL, regex fields
    (serializers.BooleanField, bool, "Must be true or false."),
    # DRF iterates an object's keys as the list: `"notify_users": {}` was taken as [].
    (serializers.ManyRelatedField, list, "Expected a list of items."),
    (serializers.MultipleChoiceField, list, "Expected a list of items."),
)


class TextOnly:
    """A serializer mixin for JSON bodies: a text field takes a string, never a number (DRF would store 42 as "42"),
    a boolean field takes true or false, never 0, 1, "yes" or "off" (DRF's form-friendly readings), and a list of
    ids or choices takes a list, never an object."""

    fields: Any

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            errors: dict[str, Any] = {}
            for field in self.fields.values():
                value = data.get(field.field_name)
                if field.read_only or value is None:
                    continue
                for kind, json_type, message in _JSON_TYPES:
                    if isinstance(field, kind) and not isinstance(value, json_type):
                        errors[str(field.field_name)] = [message]
                # The limit applies to the text sent, as the schema's maxLength says; DRF would trim it first.
                limit = getattr(field, "max_length", None)
                if isinstance(value, str) and limit is not None and len(value) > limit:
                    errors[str(field.field_name)] = [f"Ensure this field has no more than {limit} characters."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)  # type: ignore[misc]


class NulFreeText(OpenApiSerializerFieldExtension):
    """Every CharField of a request body (and of its subclasses: e-mail, URL, slug, regex fields, and text in a list
    or a dict) refuses NUL with a 400, "Null characters are not allowed.": DRF gives each one a
    ProhibitNullCharactersValidator, since PostgreSQL cannot store NUL. drf-spectacular does not document that
    validator, so a body that the schema allowed (`"note": "\\u0000"`) was refused (schemathesis, ST202); the schema
    now says so with the pattern NO_NUL_TEXT.

    A field whose validators give the schema its own pattern (a RegexValidator, e.g. a slug's) or a format (an
    e-mail address, a URL: neither holds NUL) keeps it; such a pattern may still admit NUL (a webhook target's
    "^https?://", tests/api/test_schema_nul.py). Response schemas are as drf-spectacular writes them (a response never
    holds NUL: the database cannot store it). Registered when this module is imported, which every module of
    serializers does."""

    target_class = serializers.CharField
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        validators = self.target.validators
        if (
            direction == "request"
            and isinstance(schema, dict)
            and schema.get("type") == "string"
            and not {"pattern", "format", "enum"} & set(schema)
            and any(isinstance(v, ProhibitNullCharactersValidator) for v in validators)
            and not any(isinstance(v, RegexValidator) for v in validators)  # its own pattern goes in after this
        ):
            schema["pattern"] = NO_NUL_TEXT
        return schema


class StrictCharField(serializers.CharField):
    """Text taken as sent, inside a list or a dict too, where TextOnly does not look: a string (not 42), not trimmed
    (so "  " is not blank and minLength and maxLength count what was sent, as the schema says). Its schema says that
    it cannot hold NUL, which DRF refuses (and PostgreSQL cannot store), so that a client knows before it is refused.
    (It says so with a RegexValidator of its own, older than NulFreeText, which documents the same pattern: kept so
    that its schema stays as it was.)"""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.validators = [
            *(v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)),
            # NO_NUL_TEXT, written as Python's re reads it (drf-spectacular writes \x00 as \u0000).
            RegexValidator(
                "^[^\\x00]+$", message="Null characters are not allowed.", code="null_characters_not_allowed"
            ),
        ]

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return str(super().to_internal_value(data))


class IdField(serializers.PrimaryKeyRelatedField):
    """An id in a body: a whole number, as a JSON integer (or digits, in a multipart form). DRF's took 1.5 as 1,
    true as 1, and 1e999 (infinity, before the parser refused it) through to the database as a 500."""

    def to_internal_value(self, data: Any) -> Any:
        digits = isinstance(data, str) and data.isascii() and data.isdigit()
        if not digits and (isinstance(data, bool) or not isinstance(data, int)):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(int(data))


class StrictSerializer(TextOnly, serializers.Serializer):
    """A Serializer whose text fields take text only."""


class StrictModelSerializer(TextOnly, serializers.ModelSerializer):
    """A ModelSerializer whose text fields take text only and whose relations take whole-number ids."""

    serializer_related_field = IdField


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, with `?name=` read as "name not given" for every filter (as a form would), so that
    `?status=` or `?kind=` no longer refuse "" as a choice. The schema says so (allowEmptyValue)."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        """With no parameter of the view's filter set in the query (a plain list, a search, another page), the
        filter set would validate an empty form and apply nothing: it is not built then (a third of a list's CPU,
        docs/benchmarks.md). A parameter counts when its name is a filter's, or a filter's name and a suffix."""
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not _filters_named(request, filterset_class.base_filters):
            return queryset
        return super().filter_queryset(request, queryset, view)

    def get_filterset_kwargs(self, request: Request, queryset: QuerySet[Any], view: Any) -> dict[str, Any]:
        kwargs = super().get_filterset_kwargs(request, queryset, view)
        data = kwargs["data"].copy()
        for name in list(data):
            values = [value for value in data.getlist(name) if value != ""]
            if values:
                data.setlist(name, values)
            else:
                del data[name]
        kwargs["data"] = data
        return kwargs


def _filters_named(request: Request, names: Any) -> bool:
    for param, values in request.query_params.lists():
        if not any(value != "" for value in values):
            continue  # "?name=" is "name not given" (get_filterset_kwargs)
        if param in names or any(param.startswith(f"{name}_") for name in names):
            return True
    return False


class SearchFilter(filters.SearchFilter):
    """DRF's `?search=`, whose errors name the parameter (`{"search": [...]}`, not a bare list) and whose schema says
    that it cannot hold a NUL character (PostgreSQL text cannot)."""

    def get_search_terms(self, request: Request) -> list[str]:
        try:
            return list(super().get_search_terms(request))
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({self.search_param: exc.detail}) from None

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"] = {**parameter["schema"], "pattern": NO_NUL}
        return parameters


class CharFilter(django_filters.CharFilter):
    """`?field=<text>`, documented with what the form field refuses: a NUL character, more than max_length."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema: dict[str, Any] = {"type": "string", "pattern": NO_NUL}
        if kwargs.get("max_length"):
            schema["maxLength"] = kwargs["max_length"]
        extend_schema_field(schema)(self)
