"""Idempotency-Key on POST: a retry gets the first response, another body or endpoint is 422, a running one 409."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import yaml
from django.conf import settings
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from itsm.api.idempotency import KEY_PATTERN, _parse_key
from itsm.models import Backup, IdempotencyKey, Incident, Ticket
from itsm.services import tickets as ticket_services
from itsm.services.idempotency import (
    delete_expired_idempotency_keys,
    idempotency_claim,
    request_fingerprint,
)

TICKETS = "/api/v1/tickets/"
INCIDENTS = "/api/v1/incidents/"
BACKUPS = "/api/v1/backups/"
BODY = {"title": "VPN drops every hour", "priority": "high"}

pytestmark = pytest.mark.django_db


def post(client, url, body, key=None):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(url, body, format="json", **headers)


class TestReplay:
    def test_a_retry_with_the_same_key_and_body_gets_the_first_response_and_creates_nothing(self, as_requester):
        first = post(as_requester, TICKETS, BODY, key="k-1")
        again = post(as_requester, TICKETS, BODY, key="k-1")

        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert (again["ETag"], again["Location"]) == (first["ETag"], first["Location"])
        assert again["Idempotent-Replayed"] == "true"
        assert not first.has_header("Idempotent-Replayed")
        assert Ticket.objects.count() == 1

    def test_the_replay_is_the_stored_response_even_after_the_ticket_changed(self, as_requester):
        first = post(as_requester, TICKETS, BODY, key="k-1")
        Ticket.objects.filter(pk=first.json()["id"]).update(title="Renamed", version=7)
        again = post(as_requester, TICKETS, BODY, key="k-1")
        assert again.json()["title"] == BODY["title"]
        assert again["ETag"] == first["ETag"]

    def test_the_quoted_structured_field_form_is_the_same_key(self, as_requester):
        post(as_requester, TICKETS, BODY, key="k-1")
        again = post(as_requester, TICKETS, BODY, key='"k-1"')
        assert again["Idempotent-Replayed"] == "true"
        assert Ticket.objects.count() == 1

    def test_the_body_is_compared_canonically_so_key_order_does_not_matter(self, as_requester):
        post(as_requester, TICKETS, {"title": "A", "priority": "low"}, key="k-1")
        again = post(as_requester, TICKETS, {"priority": "low", "title": "A"}, key="k-1")
        assert again["Idempotent-Replayed"] == "true"

    def test_an_incident_is_declared_once(self, as_agent):
        body = {"title": "API down", "severity": "medium"}
        first = post(as_agent, INCIDENTS, body, key="inc-1")
        again = post(as_agent, INCIDENTS, body, key="inc-1")
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"
        assert Incident.objects.count() == 1

    def test_a_backup_is_queued_once(self, as_admin, django_capture_on_commit_callbacks):
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        broker.delete("backups")
        try:
            with django_capture_on_commit_callbacks(execute=True):
                first = post(as_admin, BACKUPS, {"kind": "database"}, key="b-1")
                again = post(as_admin, BACKUPS, {"kind": "database"}, key="b-1")
            assert first.status_code == again.status_code == 202
            assert again.json() == first.json()
            assert Backup.objects.count() == 1
            assert broker.llen("backups") == 1
        finally:
            broker.delete("backups")


class TestClientErrors:
    def test_the_same_key_with_another_body_is_422_and_creates_nothing(self, as_requester):
        post(as_requester, TICKETS, BODY, key="k-1")
        response = post(as_requester, TICKETS, {**BODY, "priority": "low"}, key="k-1")
        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert "different request body" in response.json()["detail"]
        assert Ticket.objects.count() == 1

    def test_the_same_key_on_another_endpoint_is_422(self, as_agent):
        post(as_agent, TICKETS, BODY, key="k-1")
        response = post(as_agent, INCIDENTS, {"title": "API down"}, key="k-1")
        assert response.status_code == 422
        assert "POST /api/v1/tickets/" in response.json()["detail"]
        assert Incident.objects.count() == 0

    def test_a_request_still_running_is_409_with_retry_after(self, as_requester, requester):
        idempotency_claim(user=requester, key="k-1", method="POST", path=TICKETS, fingerprint=request_fingerprint(BODY))
        response = post(as_requester, TICKETS, BODY, key="k-1")
        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_key_in_use"
        assert response["Retry-After"] == "1"
        assert Ticket.objects.count() == 0

    @pytest.mark.parametrize(
        ("key", "message"),
        [
            ("", "blank"),
            ("   ", "blank"),
            ('""', "blank"),
            ("x" * 256, "at most 255"),
            ("tab\there", "printable ASCII"),
        ],
    )
    def test_a_blank_over_long_or_unprintable_key_is_a_400_naming_the_header(self, as_requester, key, message):
        response = post(as_requester, TICKETS, BODY, key=key)
        assert response.status_code == 400
        assert message in response.json()["Idempotency-Key"][0]
        assert Ticket.objects.count() == 0
        assert IdempotencyKey.objects.count() == 0

    def test_a_key_of_255_characters_is_accepted(self, as_requester):
        assert post(as_requester, TICKETS, BODY, key="x" * 255).status_code == 201


class TestScope:
    def test_another_users_same_key_is_independent(self, as_requester, as_other_requester, requester, other_requester):
        mine = post(as_requester, TICKETS, BODY, key="shared")
        theirs = post(as_other_requester, TICKETS, BODY, key="shared")
        assert mine.status_code == theirs.status_code == 201
        assert not theirs.has_header("Idempotent-Replayed")
        assert mine.json()["id"] != theirs.json()["id"]
        assert Ticket.objects.get(pk=theirs.json()["id"]).requester == other_requester

    def test_without_the_header_every_post_creates(self, as_requester):
        first = post(as_requester, TICKETS, BODY)
        second = post(as_requester, TICKETS, BODY)
        assert first.status_code == second.status_code == 201
        assert not second.has_header("Idempotent-Replayed")
        assert Ticket.objects.count() == 2
        assert IdempotencyKey.objects.count() == 0


class TestOutcomes:
    def test_a_validation_error_is_stored_and_replayed(self, as_requester):
        first = post(as_requester, TICKETS, {"priority": "urgent"}, key="k-1")
        again = post(as_requester, TICKETS, {"priority": "urgent"}, key="k-1")
        assert first.status_code == again.status_code == 400
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"
        assert IdempotencyKey.objects.get().response_status == 400

    def test_a_domain_rule_refusal_is_stored_and_replayed(self, as_requester, agent):
        body = {**BODY, "assignee": agent.pk}  # requesters may not assign: InvalidInput raised by the view
        first = post(as_requester, TICKETS, body, key="k-1")
        again = post(as_requester, TICKETS, body, key="k-1")
        assert first.status_code == again.status_code == 400
        assert again.json() == first.json() == {"assignee": ["Only agents can assign tickets."]}
        assert again["Idempotent-Replayed"] == "true"

    def test_a_5xx_stores_nothing_so_the_retry_does_the_work(self, as_requester, monkeypatch):
        real_create = ticket_services.ticket_create

        def database_gone(**kwargs):
            raise OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(ticket_services, "ticket_create", database_gone)
        failed = post(as_requester, TICKETS, BODY, key="k-1")
        assert failed.status_code == 503
        assert IdempotencyKey.objects.count() == 0

        monkeypatch.setattr(ticket_services, "ticket_create", real_create)
        retried = post(as_requester, TICKETS, BODY, key="k-1")
        assert retried.status_code == 201
        assert not retried.has_header("Idempotent-Replayed")
        assert Ticket.objects.count() == 1

    def test_an_unexpected_exception_stores_nothing(self, as_requester, monkeypatch):
        def bug(**kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(ticket_services, "ticket_create", bug)
        with pytest.raises(RuntimeError):
            post(as_requester, TICKETS, BODY, key="k-1")
        assert IdempotencyKey.objects.count() == 0

    def test_a_dead_attempts_key_is_taken_over_after_two_minutes(self, as_requester, requester):
        long_ago = timezone.now() - timedelta(minutes=3)
        idempotency_claim(
            user=requester, key="k-1", method="POST", path=TICKETS, fingerprint=request_fingerprint(BODY), now=long_ago
        )
        response = post(as_requester, TICKETS, BODY, key="k-1")
        assert response.status_code == 201
        assert IdempotencyKey.objects.get().state == IdempotencyKey.State.COMPLETED

    def test_an_expired_key_starts_over_and_the_cleanup_deletes_only_expired_keys(self, as_requester):
        post(as_requester, TICKETS, BODY, key="old")
        post(as_requester, TICKETS, BODY, key="new")
        IdempotencyKey.objects.filter(key="old").update(expires_at=timezone.now() - timedelta(seconds=1))

        assert delete_expired_idempotency_keys() == 1
        assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
        again = post(as_requester, TICKETS, BODY, key="old")
        assert again.status_code == 201
        assert not again.has_header("Idempotent-Replayed")
        assert Ticket.objects.count() == 3

    def test_keys_expire_after_the_configured_hours(self, as_requester, settings):
        settings.ITSM_IDEMPOTENCY_KEY_TTL_HOURS = 2
        post(as_requester, TICKETS, BODY, key="k-1")
        record = IdempotencyKey.objects.get()
        assert record.expires_at - record.created_at == timedelta(hours=2)
        assert delete_expired_idempotency_keys(now=record.created_at + timedelta(hours=1, minutes=59)) == 0
        assert delete_expired_idempotency_keys(now=record.created_at + timedelta(hours=2)) == 1


def test_the_schema_documents_the_header_and_its_409_and_422(tmp_path: Path):
    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(path), stdout=io.StringIO())
    paths = yaml.safe_load(path.read_text())["paths"]
    for url in (TICKETS, INCIDENTS, BACKUPS):
        operation = paths[url]["post"]
        assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in operation["parameters"]), url
        assert {"409", "422"} <= set(operation["responses"]), url


@pytest.mark.parametrize(
    ("key", "valid"),
    [("abc", True), ('"abc"', True), ('"', True), ("a b", True), ('""', False), ('" "', False), ("\x7f", False)],
)
def test_the_documented_key_pattern_is_what_the_server_takes(key, valid):
    assert bool(re.match(KEY_PATTERN, key)) is valid
    if valid:
        assert _parse_key(key)
    else:
        with pytest.raises(ValidationError):
            _parse_key(key)
