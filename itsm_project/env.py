"""Typed helpers that read settings from the environment (and Docker/Kubernetes secret files)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false).")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_secret(name: str, default: str = "") -> str:
    """Read NAME, or the file named by NAME_FILE (Docker and Kubernetes secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from None
    return os.environ.get(name, default)


def env_secrets(name: str) -> list[str]:
    """Several secrets in NAME (or the file NAME_FILE), separated by commas or newlines: a rotation's former values."""
    return [item.strip() for item in env_secret(name).replace("\n", ",").split(",") if item.strip()]


_EMAIL_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "smtps": "django.core.mail.backends.smtp.EmailBackend",
    "submission": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "dummy": "django.core.mail.backends.dummy.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
}


def parse_email_url(name: str, url: str) -> dict[str, object]:
    """Django's EMAIL_* settings from one URL: smtp://user:pass@host:587/?tls=true, smtps://… (implicit TLS),
    submission://… (port 587 with STARTTLS), console://, locmem://, dummy://, file:///path. `?timeout=` is in
    seconds (10 by default). User name and password are percent-decoded."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _EMAIL_BACKENDS:
        raise ImproperlyConfigured(
            f"{name} must start with one of {', '.join(sorted(_EMAIL_BACKENDS))}:// (got {url!r})."
        )
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"tls", "ssl", "timeout"})
    if unknown:
        raise ImproperlyConfigured(f"{name} has unknown options: {', '.join(unknown)} (use tls, ssl, timeout).")

    def flag(key: str, default: bool) -> bool:
        if key not in query:
            return default
        raw = query[key].strip().lower()
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise ImproperlyConfigured(f"{name}: ?{key}={raw!r} is not a boolean (use true or false).")

    try:
        port = parts.port
        timeout = float(query.get("timeout", "10"))
    except ValueError:
        raise ImproperlyConfigured(f"{name} has an invalid port or timeout.") from None
    use_ssl = flag("ssl", scheme == "smtps")
    use_tls = flag("tls", scheme == "submission")
    if use_ssl and use_tls:
        raise ImproperlyConfigured(f"{name}: choose ?tls=true (STARTTLS) or ?ssl=true (implicit TLS), not both.")
    settings: dict[str, object] = {"EMAIL_BACKEND": _EMAIL_BACKENDS[scheme], "EMAIL_TIMEOUT": timeout}
    if scheme in ("smtp", "smtps", "submission"):
        if not parts.hostname:
            raise ImproperlyConfigured(
                f"{name} needs a host, e.g. smtp://user:password@mail.example.com:587/?tls=true."
            )
        settings |= {
            "EMAIL_HOST": parts.hostname,
            "EMAIL_PORT": port or (465 if use_ssl else 587 if scheme == "submission" else 25),
            "EMAIL_HOST_USER": unquote(parts.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
            "EMAIL_USE_TLS": use_tls,
            "EMAIL_USE_SSL": use_ssl,
        }
    elif scheme == "file":
        if not parts.path:
            raise ImproperlyConfigured(f"{name}: file:// needs a directory, e.g. file:///var/lib/itsm/mail.")
        settings["EMAIL_FILE_PATH"] = unquote(parts.path)
    return settings
