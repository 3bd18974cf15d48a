"""/api/v1/incidents/: declare, edit, move through the lifecycle, the timeline, the post-mortem."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from itsm.api.events import EventSerializer, PublicUpdateSerializer
from itsm.api.filters import StableOrderingFilter, UtcDateTimeFilter, urgency_rank
from itsm.api.idempotency import IDEMPOTENCY_KEY, IDEMPOTENCY_RESPONSES, idempotent
from itsm.api.permissions import IsAgentOrReadOnly
from itsm.api.public_view import PublicViewFilterSet, PublicViewMixin
from itsm.api.schema import TransitionConflict, paginated
from itsm.api.strict import (
    BooleanFilter,
    FilterBackend,
    IdField,
    IdFilter,
    SearchFilter,
    StrictModelSerializer,
    StrictSerializer,
)
from itsm.api.versioned import IF_MATCH, IF_MATCH_ONCE_WRITTEN, expected_version, with_etag
from itsm.models import Incident, Postmortem, Service, Ticket
from itsm.models.incidents import POSTMORTEM_FIELDS, PUBLIC_FIELDS, RECORDED_FIELDS, RESPONSE_FIELDS, STATE_TIMES
from itsm.queries.incidents import (
    incident_timeline_visible_to,
    incidents_with_counts,
    postmortem_timeline,
    relation_ids,
)
from itsm.queries.status import public_incidents
from itsm.queries.users import assignable_users
from itsm.replica import reads_from_replica
from itsm.roles import is_staff_role
from itsm.services import incidents as incident_services


class IncidentFilter(PublicViewFilterSet):
    public_fields = PUBLIC_FIELDS
    public = BooleanFilter(help_text="Shown on the status page and to requesters (agents and admins only).")
    status = django_filters.MultipleChoiceFilter(choices=Incident.Status.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Incident.Severity.choices)
    source = django_filters.ChoiceFilter(choices=Incident.Source.choices)
    service = IdFilter(field_name="services__id")
    commander = IdFilter(field_name="commander_id")
    target_missed = BooleanFilter(field_name="response_target_missed")
    detected_after = UtcDateTimeFilter(field_name="detected_at", lookup_expr="gte")
    detected_before = UtcDateTimeFilter(field_name="detected_at", lookup_expr="lt")

    class Meta:
        model = Incident
        fields: list[str] = []


class RelationIds(serializers.ManyRelatedField):
    """Written as a list of primary keys; read from the context's `relation_ids` where the view put them."""

    def get_attribute(self, instance: Any) -> Any:
        known = self.context.get("relation_ids", {}).get(instance.pk)
        return super().get_attribute(instance) if known is None else known[self.field_name]

    def to_representation(self, iterable: Any) -> list[Any]:
        return [item if isinstance(item, int) else self.child_relation.to_representation(item) for item in iterable]


class IncidentSerializer(StrictModelSerializer):
    services = RelationIds(child_relation=IdField(queryset=Service.objects.all()), required=False)
    linked_tickets = RelationIds(child_relation=IdField(queryset=Ticket.objects.all()), required=False)
    commander = IdField(queryset=assignable_users(), required=False, allow_null=True)
    open_action_items = serializers.IntegerField(read_only=True, default=0)
    postmortem_status = serializers.CharField(read_only=True, allow_null=True, default=None)

    class Meta:
        model = Incident
        fields = [
            "id",
            "title",
            "summary",
            "public",
            "public_title",
            "severity",
            "status",
            "source",
            "services",
            "commander",
            "linked_tickets",
            "detected_at",
            *STATE_TIMES,
            *RESPONSE_FIELDS,
            "open_action_items",
            "postmortem_status",
            "created_by",
            "updated_at",
        ]
        read_only_fields = ["id", *RECORDED_FIELDS]
        extra_kwargs = {
            "summary": {"max_length": 20000},
            "title": {"allow_blank": False},
            "public": {
                "help_text": "Shown on the status page and to requesters, under its public title (default: private)."
            },
            "public_title": {
                "help_text": "The title anyone may read, required when public: the title is never shown to them."
            },
            "detected_at": {
                "required": False,
                "help_text": "When the incident was detected (the response clock starts then): not in the future; "
                "now if not given. Fixed once the incident exists.",
            },
        }

    def validate_detected_at(self, value: Any) -> Any:
        if value is not None and value > timezone.now():
            raise serializers.ValidationError("An incident cannot be detected in the future.")
        if self.instance is not None and value != self.instance.detected_at:
            raise serializers.ValidationError("The detection time is fixed once the incident exists.")
        return value


class PublicIncidentSerializer(serializers.ModelSerializer):
    """An incident as requesters read it: its public view (itsm.models.incidents.PUBLIC_FIELDS), as on the status
    page. Its public status updates are its timeline."""

    services = RelationIds(child_relation=serializers.PrimaryKeyRelatedField(read_only=True), read_only=True)

    class Meta:
        model = Incident
        fields = list(PUBLIC_FIELDS)
        read_only_fields = fields


class IncidentUpdateSerializer(IncidentSerializer):
    """An edit of an incident (PUT and PATCH). `detected_at` is fixed once the incident exists, so it is not part of
    an edit: leave it out, or send back the one read (another time is a 400)."""

    # The request body that PUT and PATCH document. The view validates an edit with IncidentSerializer bound to the
    # incident, whose validate_detected_at takes only the stored time, and then leaves it out of the changes: the
    # schema offered any date-time there, nearly all of which were refused (schemathesis: validation mismatch).

    class Meta(IncidentSerializer.Meta):
        read_only_fields = [*IncidentSerializer.Meta.read_only_fields, "detected_at"]
        extra_kwargs = {
            name: kwargs for name, kwargs in IncidentSerializer.Meta.extra_kwargs.items() if name != "detected_at"
        }


class IncidentTransitionSerializer(StrictSerializer):
    to = serializers.ChoiceField(choices=Incident.Status.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class NoteSerializer(StrictSerializer):
    body = serializers.CharField(max_length=20000)
    public = serializers.BooleanField(
        default=False,
        help_text="A public status update, shown with its time on the status page while the incident is active "
        "(no e-mail addresses). Otherwise an internal note.",
    )


class PostmortemSerializer(StrictModelSerializer):
    timeline = serializers.SerializerMethodField()
    action_items = serializers.SerializerMethodField()

    class Meta:
        model = Postmortem
        fields = [
            "status",
            "summary",
            "impact",
            "root_cause",
            "trigger",
            "detection",
            "resolution",
            "lessons",
            "author",
            "updated_at",
            "finalized_at",
            "action_items",
            "timeline",
        ]
        read_only_fields = ["author", "updated_at", "finalized_at", "action_items", "timeline"]
        extra_kwargs = {name: {"max_length": 50000} for name in POSTMORTEM_FIELDS}

    def get_timeline(self, postmortem: Postmortem) -> list[dict[str, Any]]:
        return EventSerializer(postmortem_timeline(postmortem), many=True).data  # type: ignore[return-value]

    def get_action_items(self, postmortem: Postmortem) -> list[dict[str, Any]]:
        if postmortem.pk is None:
            return []
        return [
            {"ticket": ticket_id, "title": title, "status": ticket_status}
            for ticket_id, title, ticket_status in postmortem.action_items.values_list("id", "title", "status")
        ]


class ActionItemSerializer(StrictSerializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000, default="")
    priority = serializers.ChoiceField(choices=Ticket.Priority.choices, default=Ticket.Priority.MEDIUM)
    assignee = IdField(queryset=assignable_users(), required=False, allow_null=True)


class ActionItemCreated(serializers.Serializer):
    ticket = serializers.IntegerField()


@extend_schema_view(
    list=extend_schema(summary="List incidents"),
    create=extend_schema(
        summary="Declare an incident (agents and admins); critical and high page on-call",
        parameters=[IDEMPOTENCY_KEY],
        responses={201: IncidentSerializer, **IDEMPOTENCY_RESPONSES},
    ),
    retrieve=extend_schema(summary="One incident (with its ETag)"),
    update=extend_schema(
        summary="Replace an incident's editable fields", request=IncidentUpdateSerializer, parameters=[IF_MATCH]
    ),
    partial_update=extend_schema(
        summary="Edit an incident (raising the severity moves the due time)",
        request=IncidentUpdateSerializer,
        parameters=[IF_MATCH],
    ),
    destroy=extend_schema(summary="Delete an incident (admins only)"),
)
class IncidentViewSet(PublicViewMixin, viewsets.ModelViewSet):
    """Requesters read public incidents only, as the status page shows them (itsm.api.public_view)."""

    queryset = Incident.objects.none()
    serializer_class = IncidentSerializer
    public_serializer_class = PublicIncidentSerializer
    permission_classes = [IsAgentOrReadOnly]
    filter_backends = [FilterBackend, SearchFilter, StableOrderingFilter]
    filterset_class = IncidentFilter
    staff_search_fields = ("title", "summary", "public_title")
    staff_ordering_fields = ("detected_at", "updated_at", "id", "response_due_at", "severity")
    ordering_expressions = {"severity": urgency_rank("severity")}
    ordering = ["-detected_at"]

    def staff_queryset(self) -> QuerySet[Incident]:
        return incidents_with_counts()

    def public_queryset(self) -> QuerySet[Incident]:
        return public_incidents()

    def _serialize(self, incidents: list[Incident], *, many: bool = False) -> Any:
        context = {**self.get_serializer_context(), "relation_ids": relation_ids(incidents)}
        serializer = self.get_serializer_class()
        return serializer(incidents if many else incidents[0], many=many, context=context).data

    @reads_from_replica
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        assert page is not None  # every list is paginated (REST_FRAMEWORK's DEFAULT_PAGINATION_CLASS)
        return self.get_paginated_response(self._serialize(list(page), many=True))

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incident = self.get_object()
        response = Response(self._serialize([incident]))
        return with_etag(response, incident) if not self.public_view() else response

    def _fresh(self, incident_id: int) -> Response:
        incident = incidents_with_counts().get(pk=incident_id)
        return with_etag(Response(self._serialize([incident])), incident)

    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        incident = incident_services.incident_create(actor=request.user, **body.validated_data)
        response = self._fresh(incident.pk)
        response.status_code = status.HTTP_201_CREATED
        return response

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incident = self.get_object()
        version = expected_version(request, Incident, incident.pk)
        body = self.get_serializer(incident, data=request.data, partial=kwargs.get("partial", False))
        body.is_valid(raise_exception=True)
        changes = {k: v for k, v in body.validated_data.items() if k != "detected_at"}
        incident_services.incident_update(
            incident_id=incident.pk, actor=request.user, changes=changes, expected_version=version
        )
        return self._fresh(incident.pk)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incident_services.incident_delete(incident_id=self.get_object().pk, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[IF_MATCH],
        request=IncidentTransitionSerializer,
        responses={
            200: IncidentSerializer,
            409: OpenApiResponse(TransitionConflict, description="Not an allowed next state."),
        },
        summary="Move an incident through its lifecycle",
    )
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str | None = None) -> Response:
        body = IncidentTransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # No get_object() first: the service's row lock is the lookup (a missing id is a 404), and the counts
        # and relations get_object() reads would be discarded (docs/benchmarks.md, incident transition).
        if not (pk or "").isdigit():
            raise Http404
        version = expected_version(request, Incident, int(pk or 0))
        try:
            incident = incident_services.incident_transition(
                incident_id=int(pk or 0),
                actor=request.user,
                to=body.validated_data["to"],
                note=body.validated_data["note"],
                expected_version=version,
            )
        except Incident.DoesNotExist:
            raise Http404 from None
        return self._fresh(incident.pk)

    @extend_schema(
        methods=["GET"],
        responses=paginated(EventSerializer),
        summary="The incident's timeline (requesters: a public incident's public status updates only, without their "
        "author)",
        filters=False,
    )
    @extend_schema(
        methods=["POST"],
        request=NoteSerializer,
        responses={201: EventSerializer},
        summary="Add an internal note, or a public status update (`public: true`)",
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def timeline(self, request: Request, pk: str | None = None) -> Response:
        incident = self.get_object()
        if request.method == "POST":
            body = NoteSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            post = (
                incident_services.incident_status_update
                if body.validated_data["public"]
                else incident_services.incident_note
            )
            event = post(incident_id=incident.pk, actor=request.user, body=body.validated_data["body"])
            return Response(EventSerializer(event).data, status=status.HTTP_201_CREATED)
        page = self.paginate_queryset(incident_timeline_visible_to(request.user, incident))
        shown = PublicUpdateSerializer if self.public_view() else EventSerializer
        return self.get_paginated_response(shown(page, many=True).data)

    @extend_schema(
        methods=["GET"],
        responses=PostmortemSerializer,
        summary="The post-mortem, empty draft if none (agents and admins)",
    )
    @extend_schema(
        methods=["PUT"],
        parameters=[IF_MATCH_ONCE_WRITTEN],
        request=PostmortemSerializer,
        responses={
            200: PostmortemSerializer,
            409: OpenApiResponse(description="`final` before the incident is resolved."),
        },
        summary="Write the post-mortem",
    )
    @action(detail=True, methods=["get", "put"], filter_backends=[])
    def postmortem(self, request: Request, pk: str | None = None) -> Response:
        incident = self.get_object()
        if request.method == "PUT":
            written = Postmortem.objects.filter(incident=incident).values_list("pk", flat=True).first()
            # The first write creates it (no If-Match, 0: "none yet"); every later one sends the ETag it read.
            version = 0 if written is None else expected_version(request, Postmortem, written)
            body = PostmortemSerializer(data=request.data, partial=True)
            body.is_valid(raise_exception=True)
            postmortem = incident_services.postmortem_save(
                incident_id=incident.pk, actor=request.user, data=body.validated_data, expected_version=version
            )
            return with_etag(Response(PostmortemSerializer(postmortem).data), postmortem)
        if not is_staff_role(request.user):
            raise PermissionDenied("Only agents and admins can read post-mortems.")
        existing = Postmortem.objects.filter(incident=incident).first()
        if existing is None:
            return Response(PostmortemSerializer(Postmortem(incident=incident, updated_at=incident.updated_at)).data)
        return with_etag(Response(PostmortemSerializer(existing).data), existing)

    @extend_schema(
        request=ActionItemSerializer,
        responses={201: ActionItemCreated},
        summary="Add a post-mortem action item (a ticket)",
    )
    @action(detail=True, methods=["post"], url_path="postmortem/action-items", filter_backends=[])
    def action_items(self, request: Request, pk: str | None = None) -> Response:
        incident = self.get_object()
        body = ActionItemSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ticket = incident_services.postmortem_add_action_item(
            incident_id=incident.pk, actor=request.user, **body.validated_data
        )
        return Response({"ticket": ticket.pk}, status=status.HTTP_201_CREATED)
