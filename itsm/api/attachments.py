"""Attachments: `/api/v1/tickets/{id}/attachments/` lists a ticket's files and takes new ones (multipart, through
the ticket viewset, which mixes in TicketAttachmentActions), and `/api/v1/attachments/{id}/download/` streams one
as a download, never as a page. What a user cannot see is a 404 (itsm.queries.attachments)."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from itsm.api.schema import paginated
from itsm.api.strict import MAX_ID, IdField, StrictSerializer
from itsm.models import Attachment, Comment, Ticket
from itsm.models.attachments import RECORDED_FIELDS
from itsm.queries.attachments import attachments_visible_to
from itsm.queries.tickets import comments_visible_to
from itsm.services.attachments import attachment_create, attachment_delete

logger = logging.getLogger(__name__)


class AttachmentSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField(help_text="Where the file is downloaded (with your token).")

    class Meta:
        model = Attachment
        fields = ["id", "ticket", "comment", *RECORDED_FIELDS, "download_url"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_download_url(self, attachment: Attachment) -> str:
        return reverse("attachment-download", args=[attachment.pk], request=self.context.get("request"))


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class CommentIdField(IdField):
    """A comment of the ticket that the uploader sees; any other id is "does not exist", whether or not it does."""


class AttachmentUploadSerializer(StrictSerializer):
    """A multipart form: the file, and optionally the comment it belongs to."""

    file = serializers.FileField(help_text="The file. At most ITSM_ATTACHMENT_MAX_BYTES (10 MiB by default).")
    comment = CommentIdField(
        queryset=Comment.objects.none(),
        required=False,
        help_text="The id of a comment of this ticket to attach the file to (internal notes: agents and admins).",
    )

    def __init__(self, *args: Any, comments: QuerySet[Comment] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if comments is not None:
            self.fields["comment"].queryset = comments


# `attachments` on the ticket viewset: GET lists, POST uploads. The ticket comes from the viewset's own get_object(),
# so one that the user cannot see is a 404 before anything is read. (A comment, not a docstring: drf-spectacular
# would take a docstring for the description of every ticket operation.)
class TicketAttachmentActions:
    get_object: Any
    paginate_queryset: Any
    get_paginated_response: Any

    @extend_schema(
        methods=["GET"],
        responses=paginated(AttachmentSerializer),
        summary="A ticket's attachments (a requester's leave out those of internal notes)",
        filters=False,
    )
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": AttachmentUploadSerializer},
        responses={201: AttachmentSerializer},
        summary="Attach a file to a ticket or to one of its comments (multipart)",
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[], parser_classes=[MultiPartParser])
    def attachments(self, request: Request, **route: Any) -> Response:  # the ticket's pk, and a format suffix
        ticket: Ticket = self.get_object()
        if request.method == "POST":
            body = AttachmentUploadSerializer(data=request.data, comments=comments_visible_to(request.user, ticket))
            body.is_valid(raise_exception=True)
            upload = body.validated_data["file"]
            attachment = attachment_create(
                ticket=ticket,
                uploaded_by=request.user,
                filename=upload.name or "",
                content_type=upload.content_type or "",
                data=upload,
                comment=body.validated_data.get("comment"),
            )
            data = AttachmentSerializer(attachment, context={"request": request}).data
            return Response(data, status=status.HTTP_201_CREATED, headers={"Location": data["download_url"]})
        page = self.paginate_queryset(attachments_visible_to(request.user, ticket))
        return self.get_paginated_response(AttachmentSerializer(page, many=True, context={"request": request}).data)


@extend_schema_view(destroy=extend_schema(summary="Delete an attachment and its file (admins only)"))
class AttachmentViewSet(viewsets.GenericViewSet):
    """One attachment by its id: its download, and its deletion by an admin."""

    queryset = Attachment.objects.none()  # the schema's model; requests use get_queryset()
    serializer_class = AttachmentSerializer
    filter_backends: list[type] = []

    def get_queryset(self) -> QuerySet[Attachment]:
        return attachments_visible_to(self.request.user)

    def destroy(self, request: Request, **route: Any) -> Response:
        attachment = self.get_object()
        attachment_delete(attachment_id=attachment.pk, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # A download answers any Accept header (a client may ask for the file's own type): errors are JSON. An
        # unknown format suffix (/download.5/) stays a 404.
        return super().perform_content_negotiation(request, force=force or not self.format_kwarg)

    @extend_schema(
        responses={
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The file, as a download (Content-Disposition: attachment) of its stored type.",
            )
        },
        summary="Download an attachment",
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, **route: Any) -> FileResponse:
        attachment = self.get_object()
        try:
            handle = attachment.file.open("rb")
        except FileNotFoundError:
            logger.error("attachment %s: its file %s is missing from storage", attachment.pk, attachment.file.name)
            raise NotFound("The file of this attachment is missing from storage.", code="file_missing") from None
        response = FileResponse(
            handle, as_attachment=True, filename=attachment.filename, content_type=attachment.content_type
        )
        # Never rendered by the browser, whatever the bytes: a download, of the stored type, in a sandbox.
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Cache-Control"] = "private, no-cache"
        return response
