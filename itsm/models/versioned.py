"""The version every editable object carries, so that a write can refuse to overwrite a change it did not see.

The ETag of an object is `"<pk>-<version>"`. Every write that changes what its readers see bumps `version` with an
F() expression in the same UPDATE, under the row lock of the service that checks the version the client read
(itsm.services.versioned); the API reads it from If-Match (itsm.api.versioned), the admin from a hidden field
(itsm.admin.versioned). docs/api.md#concurrency lists the resources.
"""

from __future__ import annotations

from django.db import models


class Versioned(models.Model):
    # Bumped by every write that readers see: the ETag, so that If-Match can refuse a stale update. The database's
    # default too, for rows written in SQL (the bench's seeding COPY, an operator's INSERT).
    version = models.PositiveIntegerField(default=1, db_default=1, editable=False)

    class Meta:
        abstract = True

    @property
    def etag(self) -> str:
        return etag_of(self.pk, self.version)


def etag_of(pk: object, version: object) -> str:
    return f'"{pk}-{version}"'
