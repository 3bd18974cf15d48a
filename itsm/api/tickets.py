"""/api/v1/tickets/: filterset, serializers and viewset, with comments, events, transitions, attachments and the
satisfaction rating (their actions are in itsm.api.attachments and itsm.api.satisfaction)."""

from __future__ import annotations

import copy
from datetime import datetime, tzinfo
from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from itsm.api.attachments import TicketAttachmentActions
from itsm.api.events import EventSerializer
from itsm.api.filters import StableOrderingFilter, TicketSearchFilter, UtcDateTimeFilter, urgency_rank
from itsm.api.idempotency import IDEMPOTENCY_KEY, IDEMPOTENCY_RESPONSES, idempotent
from itsm.api.satisfaction import TicketRatingActions
from itsm.api.schema import TransitionConflict, paginated
from itsm.api.strict import CharFilter, FilterBackend, IdField, IdFilter, StrictModelSerializer, StrictSerializer
from itsm.api.versioned import IF_MATCH, expected_version
from itsm.exceptions import InvalidInput
from itsm.models import Comment, Service, Ticket
from itsm.models.tickets import RECORDED_FIELDS, STAMPED_FIELDS
from itsm.queries.tickets import comments_visible_to, events_visible_to, tickets_visible_to
from itsm.queries.users import assignable_users
from itsm.replica import reads_from_replica
from itsm.roles import is_staff_role
from itsm.services import tickets as ticket_services

User = get_user_model()


class TicketFilter(django_filters.FilterSet):
    # distinct=False: these are columns of the ticket row (no join can repeat a row), and SELECT DISTINCT over a
    # page would make PostgreSQL compare every column of every candidate row.
    status = django_filters.MultipleChoiceFilter(choices=Ticket.Status.choices, distinct=False)
    priority = django_filters.MultipleChoiceFilter(choices=Ticket.Priority.choices, distinct=False)
    sla = django_filters.MultipleChoiceFilter(field_name="sla_status", choices=Ticket.SlaStatus.choices, distinct=False)
    assignee = IdFilter(field_name="assignee_id")
    requester = IdFilter(field_name="requester_id")
    service = IdFilter(field_name="service_id")
    category = CharFilter(field_name="category", max_length=100)
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Ticket
        fields: list[str] = []


_BUILT_FIELDS: dict[type, dict[str, serializers.Field]] = {}


class TicketSerializer(StrictModelSerializer):
    """A ticket as the API shows it. Status changes only through the transition endpoint."""

    service = IdField(queryset=Service.objects.all(), required=False, allow_null=True)
    assignee = IdField(
        queryset=assignable_users(),
        required=False,
        allow_null=True,
    )

    class Meta:
        model = Ticket
        fields = [
            "id",
            "title",
            "description",
            "status",
            "priority",
            "category",
            "service",
            "requester",
            "assignee",
            *STAMPED_FIELDS,
        ]
        read_only_fields = ["id", "requester", *RECORDED_FIELDS]
        extra_kwargs = {"description": {"max_length": 20000}, "title": {"allow_blank": False}}

    def get_fields(self) -> dict[str, serializers.Field]:
        """ModelSerializer reads the model's fields anew for every instance (0.7 ms of a ticket create's CPU): they
        are built once per class here and each instance gets its own deep copy, as DRF copies declared fields."""
        built = _BUILT_FIELDS.get(type(self))
        if built is None:
            built = _BUILT_FIELDS[type(self)] = super().get_fields()
        return copy.deepcopy(built)

    def to_representation(self, instance: Ticket) -> dict[str, Any]:
        """The same JSON as ModelSerializer's (a test compares them), written out: the field-by-field path cost
        as much as everything else in a list request together (docs/benchmarks.md). The current time zone is
        looked up once per ticket, not once per time (a fifth of a list's CPU went to those lookups)."""
        zone = timezone.get_current_timezone()
        return {
            "id": instance.pk,
            "title": instance.title,
            "description": instance.description,
            "status": instance.status,
            "priority": instance.priority,
            "category": instance.category,
            "service": instance.service_id,
            "requester": instance.requester_id,
            "assignee": instance.assignee_id,
            "created_at": _iso(instance.created_at, zone),
            "updated_at": _iso(instance.updated_at, zone),
            "first_response_at": _iso(instance.first_response_at, zone),
            "resolved_at": _iso(instance.resolved_at, zone),
            "closed_at": _iso(instance.closed_at, zone),
            "response_due_at": _iso(instance.response_due_at, zone),
            "resolution_due_at": _iso(instance.resolution_due_at, zone),
            "sla_status": instance.sla_status,
            "sla_policy": instance.sla_policy_id,
        }


def _iso(value: datetime | None, zone: tzinfo) -> str | None:
    """DRF's DateTimeField output: in the current time zone, ISO 8601, UTC written as Z."""
    if value is None:
        return None
    text = timezone.localtime(value, zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class TransitionSerializer(StrictSerializer):
    to = serializers.ChoiceField(choices=Ticket.Status.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class CommentSerializer(StrictModelSerializer):
    class Meta:
        model = Comment
        fields = ["id", "ticket", "author", "body", "internal", "created_at"]
        read_only_fields = ["id", "ticket", "author", "created_at"]
        extra_kwargs = {"body": {"max_length": 20000, "allow_blank": False}}


@extend_schema_view(
    list=extend_schema(summary="List the tickets you can see"),
    create=extend_schema(
        summary="Open a ticket",
        parameters=[IDEMPOTENCY_KEY],
        responses={201: TicketSerializer, **IDEMPOTENCY_RESPONSES},
    ),
    retrieve=extend_schema(summary="One ticket (with its ETag)"),
    update=extend_schema(summary="Replace a ticket's editable fields", parameters=[IF_MATCH]),
    partial_update=extend_schema(summary="Edit some fields of a ticket", parameters=[IF_MATCH]),
    destroy=extend_schema(summary="Delete a ticket (admins only)"),
)
class TicketViewSet(TicketAttachmentActions, TicketRatingActions, viewsets.ModelViewSet):
    queryset = Ticket.objects.none()  # the schema's model; requests use get_queryset()
    serializer_class = TicketSerializer
    filter_backends = [FilterBackend, TicketSearchFilter, StableOrderingFilter]
    filterset_class = TicketFilter
    ordering_fields = ["created_at", "updated_at", "id", "priority", "status", "response_due_at", "resolution_due_at"]
    ordering_expressions = {"priority": urgency_rank("priority")}
    ordering = ["-created_at"]

    def get_queryset(self) -> QuerySet[Ticket]:
        return tickets_visible_to(self.request.user)

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """One ticket by its id without query parameters: every filter backend would hand the tickets back as they
        are (no filter, no search, an order that one row does not need), after building the filter set for nothing
        (a fifth of a ticket detail's CPU, docs/benchmarks.md). With parameters they apply, as to a list."""
        if self.detail and not self.request.query_params:
            return queryset
        return super().filter_queryset(queryset)

    @reads_from_replica
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ticket = self.get_object()
        return Response(self.get_serializer(ticket).data, headers={"ETag": ticket.etag})

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = dict(serializer.validated_data)
        if data.get("assignee") is not None and not is_staff_role(self.request.user):
            raise InvalidInput({"assignee": ["Only agents can assign tickets."]})
        serializer.instance = ticket_services.ticket_create(
            requester=self.request.user, actor=self.request.user, **data
        )

    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        ticket: Ticket = serializer.instance  # type: ignore[assignment]
        return Response(
            serializer.data,
            status=status.HTTP_201_CREATED,
            headers={"ETag": ticket.etag, "Location": reverse("ticket-detail", args=[ticket.pk], request=request)},
        )

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ticket = self.get_object()
        version = expected_version(request, Ticket, ticket.pk)
        serializer = self.get_serializer(ticket, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        ticket = ticket_services.ticket_update(
            ticket_id=ticket.pk, actor=request.user, expected_version=version, changes=dict(serializer.validated_data)
        )
        return Response(self.get_serializer(ticket).data, headers={"ETag": ticket.etag})

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ticket = self.get_object()
        ticket_services.ticket_delete(ticket_id=ticket.pk, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=TransitionSerializer,
        responses={
            200: TicketSerializer,
            409: OpenApiResponse(TransitionConflict, description="Not an allowed next state."),
        },
        summary="Change a ticket's status",
    )
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str | None = None) -> Response:
        ticket = self.get_object()
        body = TransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ticket = ticket_services.ticket_transition(
            ticket_id=ticket.pk, actor=request.user, to=body.validated_data["to"], note=body.validated_data["note"]
        )
        return Response(self.get_serializer(ticket).data, headers={"ETag": ticket.etag})

    @extend_schema(
        methods=["GET"], responses=paginated(CommentSerializer), summary="A ticket's comments", filters=False
    )
    @extend_schema(
        methods=["POST"], request=CommentSerializer, responses={201: CommentSerializer}, summary="Comment on a ticket"
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def comments(self, request: Request, pk: str | None = None) -> Response:
        ticket = self.get_object()
        if request.method == "POST":
            body = CommentSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            comment = ticket_services.comment_create(
                ticket_id=ticket.pk,
                author=request.user,
                body=body.validated_data["body"],
                internal=body.validated_data.get("internal", False),
            )
            return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)
        return self._paginated(comments_visible_to(request.user, ticket), CommentSerializer)

    @extend_schema(responses=paginated(EventSerializer), summary="A ticket's timeline of changes", filters=False)
    @action(detail=True, methods=["get"], filter_backends=[])
    def events(self, request: Request, pk: str | None = None) -> Response:
        ticket = self.get_object()
        return self._paginated(events_visible_to(request.user, ticket), EventSerializer)

    def _paginated(self, queryset: QuerySet[Any], serializer_class: type[serializers.Serializer]) -> Response:
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer_class(page, many=True).data)
