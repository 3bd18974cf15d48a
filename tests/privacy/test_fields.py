"""Every field that may hold a person's name or address has a decision in itsm.services.privacy: a new model, or a
new field, cannot slip past the erasure unnoticed (as tests/audit/test_registration.py does for the audit trail)."""

from __future__ import annotations

import re

from django.apps import apps
from django.db import models

from itsm.services.privacy import HANDLED, NOT_PERSONAL, SCANNED

# Field names that suggest a person's name or address.
SUSPECT = re.compile(r"email|name|sender|target|address|recipient")


def suspect_fields() -> set[str]:
    """app.Model.field of every text, JSON, bytes or e-mail field of the platform's models, and of every field
    named like an address or a name."""
    found = set()
    for model in apps.get_app_config("itsm").get_models():
        for field in model._meta.concrete_fields:
            kind = isinstance(field, models.EmailField | models.TextField | models.JSONField | models.BinaryField)
            if kind or SUSPECT.search(field.name):
                found.add(f"{model._meta.label}.{field.name}")
    return found


def scanned() -> set[str]:
    return {f"{label}.{name}" for label, names in SCANNED.items() for name in names}


def test_every_field_that_may_hold_a_name_or_an_address_has_a_decision():
    undecided = suspect_fields() - scanned() - set(HANDLED) - set(NOT_PERSONAL)
    assert undecided == set(), "add each to SCANNED, HANDLED or NOT_PERSONAL in itsm/services/privacy.py"


def test_each_field_has_one_decision_and_each_decision_names_a_real_field():
    assert set(HANDLED) & set(NOT_PERSONAL) == set()
    assert scanned() & set(NOT_PERSONAL) == set()
    for label in [*scanned(), *HANDLED, *NOT_PERSONAL]:
        app_model, name = label.rsplit(".", 1)
        apps.get_model(app_model)._meta.get_field(name)  # raises for a field renamed or removed
    assert all(len(reason) > 5 for reason in [*HANDLED.values(), *NOT_PERSONAL.values()])
