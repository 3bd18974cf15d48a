"""Domain exceptions raised by the services; `itsm.api.errors` maps each to its HTTP status."""

from __future__ import annotations

from itsm.lifecycles import TransitionNotAllowed


class DomainError(Exception):
    """Base of the errors a service raises on purpose."""


class NotPermitted(DomainError):
    """The actor's role does not allow this change (HTTP 403)."""


class StaleVersion(DomainError):
    """The row changed since the client read it (HTTP 412)."""

    def __init__(self, current_etag: str, noun: str = "ticket") -> None:
        self.current_etag = current_etag
        super().__init__(f"The {noun} was changed by someone else: fetch it again and reapply your change.")


class Conflict(DomainError):
    """The change contradicts the object's state in a way a transition table cannot say (HTTP 409)."""


class InvalidInput(DomainError):
    """Input that passes the serializer but breaks a domain rule, with per-field messages (HTTP 400)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(str(errors))


class NotReady(DomainError):
    """The object is not in a state that allows this action yet, e.g. verifying an unfinished backup (HTTP 409)."""


__all__ = [
    "Conflict",
    "DomainError",
    "InvalidInput",
    "NotPermitted",
    "NotReady",
    "StaleVersion",
    "TransitionNotAllowed",
]
