"""The admin's erasure: a confirmation page asks whether the comments' text stays, then erases, recorded with the
admin as the actor and `admin` as the source."""

from __future__ import annotations

from typing import Any

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from itsm.models import Comment
from itsm.services.privacy import BLANKED
from tests.privacy.conftest import EMAIL, USERNAME

pytestmark = pytest.mark.django_db


def action(operator: Any, user: Any, **extra: Any) -> Any:
    data = {"action": "erase_personal_data", "_selected_action": [user.pk], **extra}
    return operator.post("/admin/auth/user/", data, follow=True)


def test_the_admin_asks_for_confirmation_and_the_comments_choice_before_erasing(person, operator: Any):
    page = action(operator, person.user)
    text = page.content.decode()
    assert "Erase a person" in text
    assert EMAIL in text
    assert 'name="comments"' in text
    person.user.refresh_from_db()
    assert person.user.username == USERNAME  # nothing yet


def test_the_admin_erases_with_the_chosen_comments_and_is_recorded_as_the_actor(
    person, operator: Any, admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        page = action(operator, person.user, comments="blank", erase="Erase for good")
    assert f"Erased {USERNAME}: now erased-{person.user.pk}." in page.content.decode()
    assert Comment.objects.get(pk=person.comment.pk).body == BLANKED
    user_type = ContentType.objects.get_for_model(person.user)
    entry = LogEntry.objects.filter(content_type=user_type, object_id=person.user.pk).latest("pk")
    assert entry.actor == admin
    assert entry.additional_data["source"] == "admin"
    assert entry.additional_data["erasure"]["comments"] == "blank"


def test_the_admin_must_choose_what_happens_to_the_comments(person, operator: Any):
    page = action(operator, person.user, erase="Erase for good")
    assert "This field is required" in page.content.decode()
    person.user.refresh_from_db()
    assert person.user.email == EMAIL


def test_the_admin_refuses_to_erase_the_last_admin(operator: Any, admin):
    page = action(operator, admin, comments="keep", erase="Erase for good")
    assert "Adam is the last active admin" in page.content.decode()  # the admin capitalises messages
    admin.refresh_from_db()
    assert admin.is_active


def test_an_agent_has_no_personal_data_actions(person, agent):
    from django.test import Client

    client = Client()
    client.force_login(agent)
    assert client.get("/admin/auth/user/").status_code == 403
