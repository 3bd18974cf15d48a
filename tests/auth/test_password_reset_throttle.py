"""Password-reset requests, counted in the database per client address and per e-mail address asked for: past a
limit no mail goes out and the page says exactly what it says otherwise. The mail goes to a real SMTP server on
loopback (tests/mail/smtp_capture.py), so "no mail was sent" is read from what that server received."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from itsm.models import LoginThrottle
from tests.auth.two_factor import START
from tests.mail.conftest import _smtp_server, smtp_capture
from tests.mail.servers import SmtpCapture

__all__ = ["_smtp_server", "smtp_capture"]

RESET_URL = "/portal/password-reset/"
HOME, ELSEWHERE = "198.51.100.30", "198.51.100.31"

pytestmark = pytest.mark.django_db


def ask(email: str, address: str = HOME) -> Any:
    return Client().post(RESET_URL, {"email": email}, REMOTE_ADDR=address)


def sent_to(capture: SmtpCapture) -> list[list[str]]:
    return [mail.rcpt_tos for mail in capture.captured()]


def test_past_the_limit_for_an_address_asked_for_no_mail_is_sent_and_the_page_is_the_same(
    smtp_capture, requester, settings
):
    settings.ITSM_PASSWORD_RESETS_PER_EMAIL = 3
    with time_machine.travel(START, tick=False) as clock:
        answers = [ask("rita@example.com", address) for address in (HOME, ELSEWHERE, HOME, ELSEWHERE, HOME)]

        assert {(a.status_code, a["Location"]) for a in answers} == {(302, "/portal/password-reset/sent/")}
        assert sent_to(smtp_capture) == [["rita@example.com"]] * 3
        assert smtp_capture.messages()[0]["Subject"] == "Your new password for the service desk"
        # Another address of the same person is not affected: the buckets are per address asked for.
        assert ask("other@example.com").status_code == 302

        # After the wait (ITSM_LOGIN_BACKOFF_SECONDS: refused requests count nothing) one more goes out.
        clock.shift(timedelta(seconds=settings.ITSM_LOGIN_BACKOFF_SECONDS + 1))
        ask("RITA@example.com ")
        assert len(sent_to(smtp_capture)) == 4


def test_past_the_limit_for_a_client_address_nothing_is_sent_for_any_account(smtp_capture, requester, agent, settings):
    settings.ITSM_PASSWORD_RESETS_PER_ADDRESS = 2
    with time_machine.travel(START, tick=False):
        ask("nobody@example.com")
        ask("alice@example.com")
        throttled = ask("rita@example.com")
        elsewhere = ask("rita@example.com", ELSEWHERE)

    assert throttled["Location"] == "/portal/password-reset/sent/"
    assert sent_to(smtp_capture) == [["alice@example.com"], ["rita@example.com"]]
    assert elsewhere.status_code == 302


def test_an_unknown_and_a_throttled_address_get_the_same_answer_as_a_known_one(smtp_capture, requester, settings):
    settings.ITSM_PASSWORD_RESETS_PER_EMAIL = 1
    with time_machine.travel(START, tick=False):
        known = ask("rita@example.com")
        throttled = ask("rita@example.com")
        unknown = ask("nobody@example.com")

    def seen(response: Any) -> tuple[int, str, bytes]:
        return response.status_code, response["Location"], response.content

    assert seen(known) == seen(throttled) == seen(unknown)
    assert len(sent_to(smtp_capture)) == 1


def test_the_counts_are_rows_without_the_addresses(smtp_capture, requester):
    with time_machine.travel(START, tick=False):
        ask("rita@example.com")

    rows = LoginThrottle.objects.filter(scope__in=["reset_address", "reset_email"])
    assert sorted(rows.values_list("scope", flat=True)) == ["reset_address", "reset_email"]
    assert not any("rita" in key or HOME in key for key in rows.values_list("key", flat=True))
