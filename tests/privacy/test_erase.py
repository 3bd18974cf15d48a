"""An erasure request: afterwards the person's name and addresses appear nowhere the platform shows (the API, the
admin), their sign-in and files are gone, the history keeps its shape with a pseudonym, and the erasure itself is
in the audit trail."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from itsm.models import (
    Attachment,
    Comment,
    Event,
    InboundMessage,
    LoginThrottle,
    Notification,
    NotificationChannel,
    SuppressedAddress,
    TicketRating,
)
from itsm.services.privacy import BLANKED, PersonalDataRefused, personal_data_erase
from itsm.services.ticket_notifications import ticket_notices_expand
from itsm.services.tickets import ticket_update
from tests.privacy.conftest import EMAIL, TRACES, USERNAME, run_command

pytestmark = pytest.mark.django_db


def traces_in(text: str) -> list[str]:
    return [trace for trace in TRACES if trace.lower() in text.lower()]


def erase(person: Any, capture: Any, comments: str = "keep", **kwargs: Any) -> Any:
    with capture(execute=True):
        return personal_data_erase(user=person.user, comments=comments, source="command", **kwargs)


@pytest.fixture
def erased(person, django_capture_on_commit_callbacks) -> Any:
    erase(person, django_capture_on_commit_callbacks)
    person.user.refresh_from_db()
    return person


def test_the_api_shows_the_name_and_address_nowhere_after_erasure(erased, as_admin, as_agent):
    pages = [
        f"/api/v1/tickets/{erased.ticket.pk}/",
        f"/api/v1/tickets/{erased.ticket.pk}/comments/",
        f"/api/v1/tickets/{erased.ticket.pk}/events/",
        "/api/v1/tickets/",
        "/api/v1/audit/?page_size=200",
        f"/api/v1/audit/?object_type=user&object_id={erased.user.pk}",
        "/api/v1/notifications/?page_size=200",
        "/api/v1/notification-channels/",
    ]
    for client in (as_admin, as_agent):
        for page in pages:
            response = client.get(page)
            if response.status_code in (403, 404) and client is as_agent:
                continue  # an admin's page
            assert response.status_code == 200, (page, response.status_code)
            assert traces_in(response.content.decode()) == [], page
    assert f"erased-{erased.user.pk}" in as_admin.get(f"/api/v1/tickets/{erased.ticket.pk}/").content.decode()


def test_the_admin_shows_the_name_and_address_nowhere_after_erasure(erased, operator: Client):
    user, ticket = erased.user, erased.ticket
    pages = [
        "/admin/auth/user/",
        f"/admin/auth/user/{user.pk}/change/",
        f"/admin/auth/user/{user.pk}/history/",
        f"/admin/itsm/ticket/{ticket.pk}/change/",
        f"/admin/itsm/ticket/{ticket.pk}/history/",
        "/admin/auditlog/logentry/",
        "/admin/itsm/inboundmessage/",
        f"/admin/itsm/inboundmessage/{erased.message.pk}/change/",
        "/admin/itsm/notification/",
        "/admin/itsm/suppressedaddress/",
        "/admin/itsm/notificationchannel/",
    ]
    for page in pages:
        response = operator.get(page)
        assert response.status_code == 200, (page, response.status_code)
        assert traces_in(response.content.decode()) == [], page


def test_the_account_is_pseudonymised_and_cannot_sign_in(person, django_capture_on_commit_callbacks, client_for):
    TOTPDevice.objects.create(user=person.user, name="app", confirmed=True)
    as_jane = client_for(person.user)
    assert as_jane.get("/api/v1/tickets/").status_code == 200
    erase(person, django_capture_on_commit_callbacks)
    user = person.user
    user.refresh_from_db()
    assert (user.username, user.email, user.first_name, user.last_name) == (
        f"erased-{user.pk}",
        f"erased-{user.pk}@invalid",
        "",
        "",
    )
    assert not user.is_active
    assert not user.has_usable_password()
    assert not AuthToken.objects.filter(user=user).exists()
    assert as_jane.get("/api/v1/tickets/").status_code == 401
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert LoginThrottle.objects.filter(scope=LoginThrottle.Scope.RESET_EMAIL).count() == 0


def test_mail_notifications_and_bounces_carry_the_pseudonym(erased):
    pseudonym = f"erased-{erased.user.pk}@invalid"
    message = InboundMessage.objects.get(pk=erased.message.pk)
    assert message.sender == pseudonym
    assert bytes(message.raw) == b""
    assert traces_in(message.subject) == []
    assert set(Notification.objects.filter(recipient=erased.user).values_list("target", flat=True)) == {pseudonym}
    for notification in Notification.objects.all():
        assert traces_in(f"{notification.subject} {notification.body} {notification.html_body}") == []
    bodies = list(Notification.objects.filter(recipient=erased.user).values_list("body", flat=True))
    assert any(body.startswith(f"Hello erased-{erased.user.pk},") for body in bodies)  # was "Hello Jane,"
    assert not any("Jane" in body for body in bodies)
    channel = NotificationChannel.objects.get(user=erased.user)
    assert (channel.target, channel.enabled) == (f"erased-{erased.user.pk}-{channel.pk}@invalid", False)
    assert list(SuppressedAddress.objects.values_list("address", flat=True)) == [pseudonym]


def test_other_peoples_mail_quoting_the_person_is_scrubbed(person, django_capture_on_commit_callbacks):
    from itsm.models import Mailbox

    other = InboundMessage.objects.create(
        mailbox=Mailbox.objects.get(),
        uidvalidity=1,
        uid=2,
        sender="boss@example.org",
        subject="About Jane Quimby",
        status=InboundMessage.Status.IGNORED,
        raw=f"From: boss@example.org\r\nCc: {EMAIL}\r\n\r\nPlease help Jane Quimby.\r\n".encode(),
        received_at=person.message.received_at,
        processed_at=person.message.processed_at,
    )
    erase(person, django_capture_on_commit_callbacks)
    other.refresh_from_db()
    raw = bytes(other.raw).decode()
    assert traces_in(raw) == []
    assert f"Cc: erased-{person.user.pk}@invalid" in raw
    assert other.sender == "boss@example.org"


def test_comments_are_kept_with_names_and_addresses_replaced(erased):
    bodies = {c.author_id == erased.user.pk: c.body for c in Comment.objects.filter(internal=False)}
    assert bodies[True] == "Still dropping, Jane"
    assert bodies[False] == f"Thanks erased-{erased.user.pk}, we wrote to erased-{erased.user.pk}@invalid."
    note = Comment.objects.get(internal=True)
    assert note.body == f"Internal: erased-{erased.user.pk} is on the VPN beta."
    # The history's shape: the ticket, its comments and timeline stay, with the pseudonymised account.
    assert erased.ticket.comments.count() == 3
    assert Event.objects.filter(ticket=erased.ticket, actor=erased.user).exists()
    assert TicketRating.objects.get().comment == "Quick, thanks"


def test_comments_can_be_blanked(person, django_capture_on_commit_callbacks, agent, client_for):
    ticket_update(ticket_id=person.ticket.pk, actor=agent, expected_version=None, changes={"assignee": agent})
    text = "My home router is a FritzBox 7590"
    response = client_for(person.user).post(f"/api/v1/tickets/{person.ticket.pk}/comments/", {"body": text})
    assert response.status_code == 201, response.content
    ticket_notices_expand()
    told = Notification.objects.get(recipient=agent, body__contains=text)  # the agent's e-mail quotes it
    erase(person, django_capture_on_commit_callbacks, comments="blank")
    assert Comment.objects.get(pk=person.comment.pk).body == BLANKED
    assert not Notification.objects.filter(body__contains=text).exists()
    assert not Notification.objects.filter(html_body__contains="FritzBox").exists()
    told.refresh_from_db()
    assert BLANKED in told.body
    assert BLANKED in told.html_body
    assert TicketRating.objects.get().comment == ""
    assert Comment.objects.filter(ticket=person.ticket).count() == 4  # the agents' replies stay


def test_the_persons_attachments_are_removed_from_storage(person, django_capture_on_commit_callbacks):
    path = Path(settings.MEDIA_ROOT) / person.attachment.file.name
    assert path.exists()
    erase(person, django_capture_on_commit_callbacks)
    assert not path.exists()
    assert not Attachment.objects.filter(pk=person.attachment.pk).exists()
    # Its name is gone from the ticket's timeline and the audit trail; the entries stay.
    entry = Event.objects.get(ticket=person.ticket, field="attachment", new_value=str(person.attachment.pk))
    assert entry.note == "(removed: personal data erasure)"
    attachment_type = ContentType.objects.get_for_model(Attachment)
    rows = LogEntry.objects.filter(content_type=attachment_type, object_pk=str(person.attachment.pk))
    assert rows.exists()
    for row in rows:
        assert "vpn-log" not in f"{row.object_repr} {row.changes}"
        assert person.attachment.file.name not in str(row.changes)


def test_the_erasure_is_audited_without_the_old_values(person, django_capture_on_commit_callbacks):
    erase(person, django_capture_on_commit_callbacks, comments="blank")
    user_type = ContentType.objects.get_for_model(person.user)
    entry = LogEntry.objects.filter(content_type=user_type, object_id=person.user.pk).latest("pk")
    assert entry.additional_data["source"] == "command"
    assert entry.additional_data["erasure"]["comments"] == "blank"
    assert entry.additional_data["erasure"]["attachments"] == 1
    assert entry.object_repr == f"erased-{person.user.pk}"
    assert traces_in(str(entry.changes) + str(entry.additional_data) + entry.object_repr) == []
    # Earlier rows about the account: the old values are gone from them too.
    for old in LogEntry.objects.filter(content_type=user_type, object_id=person.user.pk):
        assert traces_in(str(old.changes) + old.object_repr + str(old.actor_email)) == []
    # The person's own actions keep their actor, not the address they came from.
    assert LogEntry.objects.filter(actor=person.user).exists()
    assert not LogEntry.objects.filter(actor=person.user, remote_addr__isnull=False).exists()


def test_a_second_erasure_changes_nothing(person, django_capture_on_commit_callbacks):
    erase(person, django_capture_on_commit_callbacks)
    entries = LogEntry.objects.count()
    again = erase(person, django_capture_on_commit_callbacks)
    assert again.already_erased
    assert LogEntry.objects.count() == entries
    assert run_command("erase_personal_data", f"erased-{person.user.pk}", "--comments", "keep", "--yes") == 0


def test_the_last_admin_cannot_be_erased(admin, agent, capsys):
    with pytest.raises(PersonalDataRefused, match="last active admin"):
        personal_data_erase(user=admin, comments="keep", source="command")
    assert run_command("erase_personal_data", "adam", "--comments", "keep", "--yes") == 1
    assert "adam is the last active admin" in capsys.readouterr().err
    admin.refresh_from_db()
    assert admin.is_active


def test_the_command_erases_a_person_named_by_address(person, capsys):
    assert run_command("erase_personal_data", EMAIL, "--comments", "blank", "--yes") == 0
    assert f"Erased {USERNAME}: now erased-{person.user.pk}" in capsys.readouterr().out
    assert Comment.objects.get(pk=person.comment.pk).body == BLANKED


def test_the_command_refuses_bad_input_with_a_clear_message(person, capsys):
    assert run_command("erase_personal_data", "nobody", "--comments", "keep", "--yes") == 1
    assert "No account has the user name or e-mail address 'nobody'. Nothing was erased." in capsys.readouterr().err
    assert run_command("erase_personal_data", USERNAME, "--comments", "shred", "--yes") == 2
    assert re.search(r"argument --comments: invalid choice: 'shred'", capsys.readouterr().err)
    assert run_command("erase_personal_data", USERNAME, "--yes") == 2
    assert "the following arguments are required: --comments" in capsys.readouterr().err
    person.user.refresh_from_db()
    assert person.user.username == USERNAME


def test_the_command_asks_before_it_erases(person, monkeypatch, capsys):
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert run_command("erase_personal_data", USERNAME, "--comments", "keep") == 1
    assert "Not confirmed: nothing was erased." in capsys.readouterr().err
    person.user.refresh_from_db()
    assert person.user.email == EMAIL


def test_the_persons_open_sessions_stop_working(person, django_capture_on_commit_callbacks):
    browser = Client()
    browser.force_login(person.user)
    assert browser.get("/portal/").status_code == 200
    erase(person, django_capture_on_commit_callbacks)
    assert browser.get("/portal/").status_code == 302  # back to the sign-in page
