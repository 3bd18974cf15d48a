"""Every model of the platform is either recorded by the audit trail or left out with a reason: a new model cannot
slip past the decision."""

from __future__ import annotations

from auditlog.registry import auditlog
from django.apps import apps
from django.contrib.auth import get_user_model

from itsm.audit import NOT_RECORDED, RECORDED


def test_every_model_of_the_app_is_recorded_or_left_out_with_a_reason():
    models = set(apps.get_app_config("itsm").get_models())
    assert models - set(RECORDED) - set(NOT_RECORDED) == set()
    assert set(RECORDED) & set(NOT_RECORDED) == set()
    assert all(len(reason) > 20 for reason in NOT_RECORDED.values())


def test_the_recorded_models_and_the_user_are_registered_and_no_other():
    registered = set(auditlog.get_models())
    assert registered == {*RECORDED, get_user_model()}


def test_reverse_relations_are_not_fields_of_a_recorded_row():
    assert "events" in auditlog.get_model_fields(apps.get_model("itsm", "Ticket"))["exclude_fields"]
    assert "last_login" in auditlog.get_model_fields(get_user_model())["exclude_fields"]
