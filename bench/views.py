"""The ceiling of the benchmark: what Django and DRF themselves serve from the same table on the same machine.

Both answer the first page (25 rows, newest first) with the ticket API's fields, without authentication,
filters or pagination links. The DRF view keeps DRF's stock JSON renderer, so the ceiling does not move when
the platform's renderer changes.

The detail and create ceilings are the stock DRF views of the same work, as a project would write them first: a
`RetrieveAPIView` and a `CreateAPIView` over a stock `ModelSerializer`, with the project's default authentication
and permission (the agent's token, IsAuthenticated: a new ticket needs its requester), without the platform's
visibility rules, ETag, idempotency, SLA clocks, events or notifications.

The portal's ceiling (bench/portal_bench.py): a signed-in requester's open tickets, first page, and one of their
tickets with its public comments, as minimal DRF views over session authentication: the same rows the portal's
pages read, without the portal's template, search, SLA facts or timeline.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views import View
from rest_framework import generics, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer

from itsm.api.tickets import TicketSerializer
from itsm.models import Comment, Ticket

PAGE = 25
FIELDS = TicketSerializer.Meta.fields


class BareDjangoTickets(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        rows = list(Ticket.objects.order_by("-created_at", "-id").values(*FIELDS)[:PAGE])
        return JsonResponse({"results": rows})


class TicketRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = Ticket
        fields = FIELDS


class MinimalDrfTickets(generics.ListAPIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]
    serializer_class = TicketRowSerializer
    pagination_class = None
    filter_backends: list[type] = []

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return Ticket.objects.order_by("-created_at", "-id")[:PAGE]


class MinimalDrfTicket(generics.RetrieveAPIView):
    """GET one ticket by id: the ticket detail scenario's ceiling."""

    renderer_classes = [JSONRenderer]
    serializer_class = TicketRowSerializer
    queryset = Ticket.objects.all()


class AnonymousMinimalDrfTicket(MinimalDrfTicket):
    """The same without authentication (as the list ceiling): what the token lookup costs a detail, for reference."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]


class TicketInputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Ticket
        fields = ["id", "title", "description", "priority", "category", "service", "requester", "created_at"]
        read_only_fields = ["id", "requester", "created_at"]


class MinimalDrfCreateTicket(generics.CreateAPIView):
    """POST a ticket with the create scenario's body: the ticket create scenario's ceiling (one INSERT)."""

    renderer_classes = [JSONRenderer]
    serializer_class = TicketInputSerializer

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        now = timezone.now()
        serializer.save(requester=self.request.user, created_at=now, updated_at=now)


class _Minimal:
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    pagination_class = None
    filter_backends: list[type] = []


class MinimalDrfMyTickets(_Minimal, generics.ListAPIView):
    serializer_class = TicketRowSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        mine = Ticket.objects.filter(requester=self.request.user).exclude(status=Ticket.Status.CLOSED)
        return mine.order_by("-created_at", "-id")[:PAGE]


class CommentRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = Comment
        fields = ["id", "author", "body", "created_at"]


class TicketWithCommentsSerializer(TicketRowSerializer):
    comments = serializers.SerializerMethodField()

    class Meta(TicketRowSerializer.Meta):
        fields = [*FIELDS, "comments"]

    def get_comments(self, ticket: Ticket) -> list[dict[str, object]]:
        public = ticket.comments.filter(internal=False).order_by("created_at", "id")
        return CommentRowSerializer(public, many=True).data  # type: ignore[return-value]


class MinimalDrfMyTicket(_Minimal, generics.RetrieveAPIView):
    serializer_class = TicketWithCommentsSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return Ticket.objects.filter(requester=self.request.user)
