"""EMAIL_URL: one URL for Django's e-mail settings."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from itsm_project.env import parse_email_url

SMTP = "django.core.mail.backends.smtp.EmailBackend"


def test_smtp_with_starttls_and_credentials() -> None:
    assert parse_email_url("EMAIL_URL", "smtp://itsm:s%40cret@mail.example.com:587/?tls=true") == {
        "EMAIL_BACKEND": SMTP,
        "EMAIL_TIMEOUT": 10.0,
        "EMAIL_HOST": "mail.example.com",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "itsm",
        "EMAIL_HOST_PASSWORD": "s@cret",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
    }


@pytest.mark.parametrize(
    ("url", "port", "tls", "ssl"),
    [
        ("smtp://mail.example.com", 25, False, False),
        ("smtps://mail.example.com", 465, False, True),
        ("smtp://mail.example.com/?ssl=true", 465, False, True),
        ("submission://mail.example.com", 587, True, False),
        ("smtp://mail.example.com:2525/?tls=yes&timeout=3", 2525, True, False),
    ],
)
def test_schemes_choose_the_port_and_tls(url: str, port: int, tls: bool, ssl: bool) -> None:
    settings = parse_email_url("EMAIL_URL", url)
    assert (settings["EMAIL_PORT"], settings["EMAIL_USE_TLS"], settings["EMAIL_USE_SSL"]) == (port, tls, ssl)


@pytest.mark.parametrize("kind", ["console", "locmem", "dummy"])
def test_local_backends(kind: str) -> None:
    assert parse_email_url("EMAIL_URL", f"{kind}://") == {
        "EMAIL_BACKEND": f"django.core.mail.backends.{kind}.EmailBackend",
        "EMAIL_TIMEOUT": 10.0,
    }


def test_file_backend_takes_a_directory() -> None:
    settings = parse_email_url("EMAIL_URL", "file:///var/lib/itsm/mail")
    assert settings["EMAIL_FILE_PATH"] == "/var/lib/itsm/mail"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sendmail://localhost", "must start with one of"),
        ("smtp://", "needs a host"),
        ("smtp://mail.example.com/?tls=maybe", "is not a boolean"),
        ("smtp://mail.example.com/?tls=true&ssl=true", "not both"),
        ("smtp://mail.example.com/?starttls=1", "unknown options: starttls"),
        ("smtp://mail.example.com:port/", "invalid port"),
        ("smtp://mail.example.com/?timeout=soon", "invalid port or timeout"),
        ("file://", "needs a directory"),
    ],
)
def test_a_bad_url_stops_the_start_with_a_clear_message(url: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        parse_email_url("EMAIL_URL", url)
