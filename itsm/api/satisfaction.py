"""`/api/v1/tickets/{id}/rating/`: the requester rates their resolved ticket (POST, once), and whoever sees the ticket
reads the rating (GET). Mixed into the ticket viewset, whose get_object() makes a ticket the user cannot see a 404."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from itsm.api.schema import Refusal
from itsm.api.strict import StrictModelSerializer
from itsm.models import TicketRating
from itsm.models.satisfaction import COMMENT_MAX_LENGTH, RECORDED_FIELDS, SCORES
from itsm.queries.satisfaction import rating_visible_to
from itsm.services.satisfaction import ticket_rate


class TicketRatingSerializer(StrictModelSerializer):
    """A ticket's satisfaction rating. Only `score` and `comment` are written, once."""

    class Meta:
        model = TicketRating
        fields = ["id", *RECORDED_FIELDS]
        read_only_fields = ["id", "ticket", "rated_by", "created_at"]
        extra_kwargs = {
            "score": {"min_value": SCORES.start, "max_value": SCORES.stop - 1},
            "comment": {"max_length": COMMENT_MAX_LENGTH, "allow_blank": True, "required": False},
        }


# `rating` on the ticket viewset. (A comment, not a docstring: drf-spectacular would take a docstring for the
# description of every ticket operation.)
class TicketRatingActions:
    get_object: Any

    @extend_schema(
        methods=["GET"],
        responses={
            200: TicketRatingSerializer,
            404: OpenApiResponse(Refusal, description="No such ticket, not visible to you, or not rated yet."),
        },
        summary="A ticket's satisfaction rating",
        filters=False,
    )
    @extend_schema(
        methods=["POST"],
        request=TicketRatingSerializer,
        responses={
            201: TicketRatingSerializer,
            409: OpenApiResponse(
                Refusal,
                description="Already rated (code conflict), or not resolved or closed yet (code not_ready).",
            ),
        },
        summary="Rate a resolved or closed ticket, once (its requester only)",
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def rating(self, request: Request, **route: Any) -> Response:  # the ticket's pk, and a format suffix
        ticket = self.get_object()
        if request.method == "POST":
            body = TicketRatingSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            rating = ticket_rate(
                ticket_id=ticket.pk,
                actor=request.user,
                score=body.validated_data["score"],
                comment=body.validated_data.get("comment", ""),
            )
            return Response(TicketRatingSerializer(rating).data, status=status.HTTP_201_CREATED)
        found = rating_visible_to(request.user, ticket)
        if found is None:
            raise NotFound("This ticket has not been rated.", code="not_rated")
        return Response(TicketRatingSerializer(found).data)
