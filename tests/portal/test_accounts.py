"""Signing in and out, resetting a password by e-mail, and what an anonymous visitor or a forged form gets."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from itsm.models import Comment, Ticket
from tests.factories import make_ticket
from tests.portal.conftest import text

PAGES = ["/portal/", "/portal/tickets/new/", "/portal/tickets/{id}/", "/portal/files/1/"]
FORMS = [
    ("/portal/tickets/new/", {"title": "Forged"}),
    ("/portal/tickets/{id}/reply/", {"body": "Forged"}),
    ("/portal/tickets/{id}/status/", {"to": "closed"}),
    ("/portal/tickets/{id}/rating/", {"score": "5"}),
]


@pytest.mark.parametrize("url", PAGES)
def test_an_anonymous_visitor_is_sent_to_the_portals_sign_in(client: Client, requester: Any, url: str):
    ticket = make_ticket(requester)
    path = url.format(id=ticket.pk)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/portal/sign-in/?next={path}"


@pytest.mark.parametrize(("url", "data"), FORMS)
def test_an_anonymous_post_writes_nothing(client: Client, requester: Any, url: str, data: dict[str, str]):
    ticket = make_ticket(requester)

    response = client.post(url.format(id=ticket.pk), data)

    assert response.status_code == 302
    assert response["Location"].startswith("/portal/sign-in/")
    assert Ticket.objects.count() == 1
    assert not Comment.objects.exists()


def test_a_requester_signs_in_with_the_same_account_and_lands_on_my_tickets(client: Client, requester: Any):
    page = text(client.get("/portal/sign-in/"))
    assert '<label for="id_username">' in page
    assert "Forgot your password?" in page

    response = client.post(
        "/portal/sign-in/", {"username": "rita", "password": "correct-horse-battery", "next": "/portal/tickets/new/"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/portal/tickets/new/"
    assert client.get("/portal/").status_code == 200


def test_a_wrong_password_is_a_message_on_the_form(client: Client, requester: Any):
    response = client.post("/portal/sign-in/", {"username": "rita", "password": "wrong"})

    assert response.status_code == 200
    assert "Please enter a correct username and password." in text(response)
    assert client.get("/portal/").status_code == 302


def test_sign_in_does_not_redirect_to_another_site(client: Client, requester: Any):
    response = client.post(
        "/portal/sign-in/", {"username": "rita", "password": "correct-horse-battery", "next": "https://evil.example/"}
    )

    assert response["Location"] == "/portal/"


def test_sign_out_is_a_post_and_ends_the_session(signed_in: Callable[..., Client], requester: Any):
    browser = signed_in(requester)

    assert browser.get("/portal/sign-out/").status_code == 405
    assert browser.get("/portal/").status_code == 200
    response = browser.post("/portal/sign-out/")

    assert response.status_code == 302
    assert response["Location"] == "/portal/sign-in/"
    assert browser.get("/portal/").status_code == 302


@pytest.mark.parametrize(("url", "data"), [*FORMS, ("/portal/sign-out/", {}), ("/portal/sign-in/", {})])
def test_every_form_refuses_a_post_without_its_csrf_token_with_an_html_page(
    signed_in: Callable[..., Client], requester: Any, url: str, data: dict[str, str]
):
    ticket = make_ticket(requester)
    forged = signed_in(requester, enforce_csrf_checks=True)

    response = forged.post(url.format(id=ticket.pk), data)

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert "The form has expired" in text(response)
    assert Ticket.objects.count() == 1
    assert not Comment.objects.exists()
    assert forged.get("/portal/").status_code == 200  # still signed in


def test_a_form_with_its_csrf_token_passes_the_check(signed_in: Callable[..., Client], requester: Any):
    browser = signed_in(requester, enforce_csrf_checks=True)
    page = text(browser.get("/portal/tickets/new/"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None

    response = browser.post("/portal/tickets/new/", {"title": "With a token", "csrfmiddlewaretoken": token[1]})

    assert response.status_code == 302
    assert Ticket.objects.filter(title="With a token").exists()


def test_password_reset_mails_a_link_that_sets_a_new_password(client: Client, requester: Any, settings: Any):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ITSM_PUBLIC_URL = "https://desk.example.com"

    sent = client.post("/portal/password-reset/", {"email": "RITA@example.com"})

    assert sent.status_code == 302
    assert sent["Location"] == "/portal/password-reset/sent/"
    assert "Check your e-mail" in text(client.get(sent["Location"]))
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["rita@example.com"]
    assert message.subject == "Your new password for the service desk"
    assert "Hello rita," in message.body
    link = re.search(r"https://desk\.example\.com(/portal/password-reset/\S+/\S+/)", str(message.body))
    assert link is not None, message.body

    form = client.get(link[1], follow=True)
    assert "Choose a new password" in text(form)
    mismatch = client.post(form.redirect_chain[-1][0], {"new_password1": "a-new-long-secret", "new_password2": "other"})
    assert "The two password fields didn’t match." in text(mismatch)
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "a-new-long-secret", "new_password2": "a-new-long-secret"}
    )
    assert done["Location"] == "/portal/password-reset/done/"
    assert client.login(username="rita", password="a-new-long-secret")
    # The link works once.
    assert "has been used already or has expired" in text(client.get(link[1], follow=True))


def test_password_reset_says_the_same_for_an_unknown_address_and_sends_nothing(client: Client, settings: Any, db: Any):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    response = client.post("/portal/password-reset/", {"email": "nobody@example.com"})
    bad = client.post("/portal/password-reset/", {"email": "not an address"})

    assert response["Location"] == "/portal/password-reset/sent/"
    assert mail.outbox == []
    assert "Enter a valid email address." in text(bad)
    assert 'id="id_email_error"' in text(bad)


def test_the_navigation_links_the_public_status_page(signed_in: Callable[..., Client], requester: Any):
    browser = signed_in(requester)

    page = text(browser.get("/portal/"))

    assert '<a href="/status/">Service status</a>' in page
    assert '<a class="skip-link" href="#main">Skip to main content</a>' in page
    assert browser.get("/status/").status_code == 200


def test_failed_sign_ins_are_throttled_with_the_apis_counts(client: Client, requester: Any, settings: Any):
    settings.ITSM_LOGIN_FAILURES_PER_ACCOUNT = 3
    for _ in range(3):
        assert client.post("/portal/sign-in/", {"username": "rita", "password": "wrong"}).status_code == 200

    refused = client.post("/portal/sign-in/", {"username": "rita", "password": "correct-horse-battery"})
    api = client.post(
        "/api/v1/auth/token/",
        {"username": "rita", "password": "correct-horse-battery"},
        content_type="application/json",
    )

    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= settings.ITSM_LOGIN_BACKOFF_SECONDS
    assert "Too many failed sign-ins" in text(refused)
    assert client.get("/portal/").status_code == 302  # not signed in
    assert api.status_code == 429  # the same counts
