"""The upload size guard: a multipart body larger than the largest attachment (plus room for the form around it)
is refused before a byte of it is read, by Django's own path for oversized bodies (a JSON 413, itsm.api.errors).

Django bounds the fields of a form (DATA_UPLOAD_MAX_MEMORY_SIZE) but not its files, which it writes to temporary
files whatever their size; the service checks the exact size of the file once the body is in."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler

# Boundaries, part headers and the other fields of an attachment form.
FORM_OVERHEAD_BYTES = 64 * 1024
# The portal's forms (a new ticket, a reply) take up to this many files at once; the API takes one per request.
PORTAL_FILES_PER_FORM = 5
PORTAL_PREFIX = "/portal/"


class UploadTooLarge(RequestDataTooBig):
    """A multipart body over the attachment limit; its message says the limit."""


def upload_limit(path: str = "") -> int:
    files = PORTAL_FILES_PER_FORM if path.startswith(PORTAL_PREFIX) else 1
    return files * int(settings.ITSM_ATTACHMENT_MAX_BYTES) + FORM_OVERHEAD_BYTES


class UploadSizeLimit(FileUploadHandler):
    """First of FILE_UPLOAD_HANDLERS: looks at Content-Length only, and hands every chunk on unchanged."""

    def handle_raw_input(
        self, input_data: Any, META: dict[str, Any], content_length: int, boundary: str, encoding: str | None = None
    ) -> None:
        limit = upload_limit(self.request.path_info if self.request is not None else "")
        if content_length > limit:
            raise UploadTooLarge(
                f"The request body is larger than {limit} bytes: an attachment may have at most "
                f"{settings.ITSM_ATTACHMENT_MAX_BYTES} bytes."
            )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
