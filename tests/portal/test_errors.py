"""Error pages: HTML under /portal/, JSON everywhere else, as before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from itsm.models import Ticket
from itsm.uploads import FORM_OVERHEAD_BYTES, upload_limit
from itsm_project import errors
from tests.portal.conftest import text


def test_an_unknown_portal_page_is_an_html_404(client: Client):
    response = client.get("/portal/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>Page not found</h1>" in text(response)


@pytest.mark.parametrize("url", ["/api/v1/no-such-thing/", "/no-such-page/", "/portalish/"])
def test_elsewhere_a_404_stays_json(client: Client, url: str):
    response = client.get(url)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_a_csrf_failure_outside_the_portal_stays_json(admin: Any):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin)

    response = browser.post("/admin/logout/")

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"


def test_files_larger_than_the_portal_takes_are_an_html_413(
    signed_in: Callable[..., Client], requester: Any, settings: Any
):
    settings.ITSM_ATTACHMENT_MAX_BYTES = 1000
    browser = signed_in(requester)
    big = SimpleUploadedFile("big.log", b"x" * 80_000, content_type="text/plain")

    response = browser.post("/portal/tickets/new/", {"title": "big", "attachments": big})

    assert response.status_code == 413
    assert "The files are too large" in text(response)
    assert "Each file may have at most 1000\xa0bytes." in text(response)
    assert not Ticket.objects.exists()


def test_the_api_takes_one_file_per_request_and_the_portal_five(settings: Any):
    settings.ITSM_ATTACHMENT_MAX_BYTES = 1000
    assert upload_limit("/api/v1/tickets/1/attachments/") == 1000 + FORM_OVERHEAD_BYTES
    assert upload_limit("/portal/tickets/new/") == 5000 + FORM_OVERHEAD_BYTES


def test_a_server_error_under_the_portal_is_an_html_page_that_needs_no_database(
    rf: Any, db: Any, django_assert_num_queries: Any
):
    with django_assert_num_queries(0):
        portal = errors.server_error(rf.get("/portal/tickets/1/"))
    api = errors.server_error(rf.get("/api/v1/tickets/1/"))

    assert portal.status_code == api.status_code == 500
    assert "Something went wrong" in text(portal)
    assert api["Content-Type"] == "application/json"
