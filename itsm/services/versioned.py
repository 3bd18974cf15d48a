"""The version check of every write to a versioned object (itsm.models.versioned): under the row lock of the
service's transaction, so that two writers who read the same version cannot both pass, and the bump in the same
UPDATE. `expected_version` None is no check (the admin's own check, commands and tasks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import F

from itsm.audit import remember
from itsm.exceptions import StaleVersion
from itsm.models.versioned import Versioned

V = TypeVar("V", bound=Versioned)


def version_check(row: Versioned, expected_version: int | None) -> None:
    """Refuse (StaleVersion, with the current ETag) when the client read another version of the locked `row`."""
    if expected_version is not None and expected_version != row.version:
        raise StaleVersion(row.etag, noun=str(row._meta.verbose_name))


def version_bump(row: Versioned) -> str:
    """Make the row's next save bump its version in the same UPDATE; returns the field to add to update_fields.
    After the save, `version_bumped` reads the new number without a query (the row is still locked)."""
    row.__dict__["_version_read"] = row.version
    row.version = F("version") + 1
    return "version"


def version_bumped(row: Versioned) -> None:
    """The version just written, while the row is locked: nobody else can have moved it since the lock."""
    read = row.__dict__.pop("_version_read", None)
    if read is not None:
        row.version = read + 1


def versioned_write(*, model: type[V], pk: int, expected_version: int | None, write: Callable[[V], Any]) -> V:
    """Lock the row, check the version the client read, let `write` change and save it (its save bumps the
    version), all in one transaction. For the resources without rules of their own (services, teams, channels)."""
    with transaction.atomic():
        row = remember(model._default_manager.select_for_update().get(pk=pk))
        version_check(row, expected_version)
        version_bump(row)
        write(row)
        version_bumped(row)
    return row


def version_lock(*, model: type[Versioned], pk: int, expected_version: int) -> None:
    """Lock the row for the caller's transaction (the admin's change form: its save follows in the same one) and
    refuse (StaleVersion) when it is no longer at `expected_version`."""
    row = model._default_manager.select_for_update().only("pk", "version").filter(pk=pk).first()
    if row is not None:
        version_check(row, expected_version)
