"""Domain exceptions raised by the services; `itsm.api.errors` maps each to its HTTP status."""

from __future__ import annotations

from itsm.lifecycles import TransitionNotAllowed


class DomainError(Exception):
    """Base of the errors a service raises on purpose."""


class NotPermitted(DomainError):
    """The actor's role does not allow this change (HTTP 403)."""


class StaleVersion(DomainError):
    """The row changed since the client read it (HTTP 412)."""

    def __init__(self, current_etag: str) -> None:
        self.current_etag = current_etag
        super().__init__("The ticket was changed by someone else: fetch it again and reapply your change.")


class InvalidInput(DomainError):
    """Input that passes the serializer but breaks a domain rule, with per-field messages (HTTP 400)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(str(errors))


__all__ = ["DomainError", "InvalidInput", "NotPermitted", "StaleVersion", "TransitionNotAllowed"]
