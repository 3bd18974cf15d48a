"""An access request: everything the platform holds about a person, in one JSON document, from a command or the
user list of the admin."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from itsm.queries.privacy import personal_data_export
from itsm.services.incidents import incident_create, postmortem_save
from tests.privacy.conftest import CHANNEL_EMAIL, EMAIL, NAME, USERNAME, run_command

pytestmark = pytest.mark.django_db


def test_the_export_holds_each_kind_of_record_about_the_person(person):
    TOTPDevice.objects.create(user=person.user, name="app", confirmed=True)
    data = personal_data_export(person.user)
    account = data["account"]
    assert (account["username"], account["email"], account["first_name"], account["last_name"]) == (
        USERNAME,
        EMAIL,
        "Jane",
        "Quimby",
    )
    assert account["role"] == "requester"
    assert data["sign_in"]["two_factor_enrolled"] is True
    assert data["sign_in"]["api_tokens"] == 1
    assert data["sign_in"]["password_set"] is False  # an account made by the mail intake
    assert [t["id"] for t in data["tickets"]["requested"]] == [person.ticket.pk]
    assert data["comments"][0]["body"] == "Still dropping, Jane"
    attachment = data["attachments"][0]
    assert attachment == {
        **attachment,
        "filename": "vpn-log.txt",
        "size": len(b"vpn log lines\n"),
        "ticket": person.ticket.pk,
    }
    assert set(attachment) == {"id", "filename", "content_type", "size", "ticket", "comment", "created_at"}
    assert data["ratings"][0]["comment"] == "Quick, thanks"
    assert {n["target"] for n in data["notifications"]} == {EMAIL}
    assert data["notification_channels"][0]["target"] == CHANNEL_EMAIL
    assert data["suppressed_addresses"][0]["address"] == EMAIL
    assert data["inbound_mail"][0]["subject"] == f"VPN drops for {NAME}"
    assert data["inbound_mail"][0]["ticket"] == person.ticket.pk
    assert {e["object_type"] for e in data["audit"]["by_them"]} >= {"comment", "ticket"}
    assert any("email" in (e["changes"] or {}) for e in data["audit"]["about_their_account"])
    assert {e["kind"] for e in data["timeline_entries"]} >= {"comment", "rating"}
    json.dumps(data)  # JSON as it is


def test_an_agents_export_lists_the_incidents_and_post_mortems_they_acted_on(agent):
    incident = incident_create(actor=agent, title="Database slow")
    postmortem_save(incident_id=incident.pk, actor=agent, data={"summary": "Vacuum did not run"})
    data = personal_data_export(agent)
    assert [i["id"] for i in data["incidents"]] == [incident.pk]
    assert data["incidents"][0]["created_by_them"] is True
    assert [p["incident"] for p in data["postmortems_written"]] == [incident.pk]


def test_the_command_writes_the_export_of_a_person_named_by_address_to_a_file(person, tmp_path):
    output = tmp_path / "jane.json"
    assert run_command("export_personal_data", EMAIL.upper(), "--output", str(output)) == 0
    data = json.loads(output.read_text())
    assert data["account"]["username"] == USERNAME
    assert data["format"] == "itsm-personal-data/1"


def test_the_command_prints_the_export_by_default(person, capsys):
    assert run_command("export_personal_data", USERNAME) == 0
    assert json.loads(capsys.readouterr().out)["account"]["email"] == EMAIL


def test_an_unknown_person_is_a_clear_error_with_exit_status_1(db, capsys):
    assert run_command("export_personal_data", "nobody@example.org") == 1
    assert "No account has the user name or e-mail address 'nobody@example.org'" in capsys.readouterr().err


def test_the_admin_downloads_the_export_of_one_selected_person(person, operator: Any):
    response = operator.post(
        "/admin/auth/user/", {"action": "export_personal_data", "_selected_action": [person.user.pk]}
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="personal-data-{person.user.pk}.json"'
    assert json.loads(response.content)["account"]["email"] == EMAIL


def test_the_admin_exports_one_person_at_a_time(person, operator: Any, agent):
    response = operator.post(
        "/admin/auth/user/",
        {"action": "export_personal_data", "_selected_action": [person.user.pk, agent.pk]},
        follow=True,
    )
    assert "Select exactly one person" in response.content.decode()
