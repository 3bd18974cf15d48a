"""/api/v1/notifications/ (the delivery log, with redelivery) and /api/v1/notification-channels/ (each user's
own ways to be told)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_filters
from django.core.validators import RegexValidator
from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from itsm.api.filters import StableOrderingFilter, UtcDateTimeFilter
from itsm.api.strict import BooleanFilter, FilterBackend, IdFilter, StrictModelSerializer, StrictSerializer
from itsm.api.versioned import IF_MATCH, VersionedMixin, expected_version, with_etag
from itsm.exceptions import Conflict
from itsm.models import DeliveryAttempt, Notification, NotificationChannel
from itsm.models.notifications import DELIVERY_FIELDS
from itsm.queries.notifications import notifications_visible_to
from itsm.services import notifications as notification_services
from itsm.services import ticket_notifications
from itsm.services.notification_channels import (
    MAX_ROTATION_WINDOW,
    ROTATION_WINDOW,
    notification_channel_check,
    target_display,
    webhook_secret_rotate,
)


class NotificationFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Notification.Status.choices)
    channel = django_filters.MultipleChoiceFilter(choices=Notification.Channel.choices)
    incident = IdFilter(field_name="incident_id")
    recipient = IdFilter(field_name="recipient_id")
    urgent = BooleanFilter()
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Notification
        fields: list[str] = []


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["attempted_at", "success", "status_code", "error", "duration_ms"]
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer):
    """One outbox row with its delivery log. Webhook targets show only their scheme and host."""

    target = serializers.SerializerMethodField()
    delivery_attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "channel",
            "target",
            "recipient",
            "endpoint",
            "incident",
            "subject",
            "body",
            "urgent",
            *DELIVERY_FIELDS,
            "delivery_attempts",
        ]
        read_only_fields = fields

    def get_target(self, notification: Notification) -> str:
        return target_display(notification.channel, notification.target)


@extend_schema_view(
    list=extend_schema(summary="Notifications: all for agents and admins, your own for others"),
    retrieve=extend_schema(summary="One notification with its delivery attempts"),
)
class NotificationViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Notification.objects.none()
    serializer_class = NotificationSerializer
    filter_backends = [FilterBackend, StableOrderingFilter]
    filterset_class = NotificationFilter
    ordering_fields = ["created_at", "id", "status", "next_attempt_at", "delivered_at"]
    ordering = ["-created_at"]

    def get_queryset(self) -> QuerySet[Notification]:
        return notifications_visible_to(self.request.user).prefetch_related("delivery_attempts")

    @extend_schema(
        request=None,
        responses={
            202: NotificationSerializer,
            409: OpenApiResponse(description="Still pending: it is being delivered."),
        },
        summary="Send a delivered or failed notification again (agents and admins)",
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, pk: str | None = None) -> Response:
        notification = self.get_object()
        notification = notification_services.notification_redeliver(notification_id=notification.pk, actor=request.user)
        fresh = self.get_queryset().get(pk=notification.pk)
        return Response(self.get_serializer(fresh).data, status=status.HTTP_202_ACCEPTED)


class NotificationChannelSerializer(StrictModelSerializer):
    """A channel of the signed-in user. `secret` signs their webhooks (shown for webhook channels only)."""

    target = serializers.CharField(max_length=500, help_text="An e-mail address, or an http(s) URL for webhooks.")
    secret = serializers.SerializerMethodField()

    class Meta:
        model = NotificationChannel
        fields = ["id", "channel", "target", "enabled", "secret", "created_at"]
        read_only_fields = ["id", "secret", "created_at"]

    def get_secret(self, channel: NotificationChannel) -> str | None:
        return channel.secret if channel.channel == Notification.Channel.WEBHOOK else None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        channel = attrs.get("channel", getattr(self.instance, "channel", None))
        target = attrs.get("target", getattr(self.instance, "target", ""))
        attrs["target"] = notification_channel_check(
            user=self.context["request"].user,
            channel=channel,
            target=target,
            exclude=self.instance.pk if self.instance else None,
        )
        return attrs


# Named components: an inline enum would be one more choice set for fields named "channel" (drf-spectacular's enum
# naming then warns, and the schema test fails on warnings).
@extend_schema_field({"type": "string", "enum": ["email"]}, component_name="EmailChannelKind")
class _EmailKind(serializers.CharField):
    pass


@extend_schema_field({"type": "string", "enum": ["webhook", "slack"]}, component_name="UrlChannelKind")
class _UrlKind(serializers.CharField):
    pass


class EmailChannelSerializer(serializers.Serializer):
    """E-mail to an address."""

    channel = _EmailKind()
    target = serializers.EmailField(max_length=500)
    enabled = serializers.BooleanField(required=False)


class UrlChannelSerializer(serializers.Serializer):
    """A POST to an http(s) URL, which must resolve to a public address when it is sent (the SSRF guard)."""

    channel = _UrlKind()
    target = serializers.CharField(max_length=500, validators=[RegexValidator(r"^https?://[^\x00]*$")])
    enabled = serializers.BooleanField(required=False)


# For the schema only (NotificationChannelSerializer reads the body): what a new or replaced channel's target is
# depends on its kind, which one object schema cannot say.
CHANNEL_REQUEST = PolymorphicProxySerializer(
    component_name="NotificationChannelWrite",
    serializers=[EmailChannelSerializer, UrlChannelSerializer],
    resource_type_field_name=None,
)


class SecretRotationSerializer(StrictSerializer):
    window_hours = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=int(MAX_ROTATION_WINDOW.total_seconds() // 3600),
        default=int(ROTATION_WINDOW.total_seconds() // 3600),
        help_text="How long the former secret keeps signing beside the new one (0: it stops at once).",
    )


class RotatedSecretSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    secret = serializers.CharField(help_text="The new signing secret: give it to the receiver.")
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="Until then deliveries carry a second signature, made with the former secret."
    )


class NotificationChannelFilter(django_filters.FilterSet):
    channel = django_filters.ChoiceFilter(choices=Notification.Channel.choices)
    enabled = BooleanFilter()

    class Meta:
        model = NotificationChannel
        fields: list[str] = []


@extend_schema_view(
    list=extend_schema(summary="Your notification channels"),
    create=extend_schema(summary="Add a channel (e-mail, webhook or Slack)", request=CHANNEL_REQUEST),
    retrieve=extend_schema(summary="One of your channels"),
    update=extend_schema(summary="Change one of your channels", request=CHANNEL_REQUEST, parameters=[IF_MATCH]),
    partial_update=extend_schema(summary="Change some fields of one of your channels", parameters=[IF_MATCH]),
    destroy=extend_schema(summary="Remove one of your channels"),
)
class NotificationChannelViewSet(
    VersionedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Every signed-in user manages their own channels and sees no one else's (404)."""

    queryset = NotificationChannel.objects.none()
    serializer_class = NotificationChannelSerializer
    filter_backends = [FilterBackend, StableOrderingFilter]
    filterset_class = NotificationChannelFilter
    ordering_fields = ["created_at", "id", "channel"]
    ordering = ["id"]

    def get_queryset(self) -> QuerySet[NotificationChannel]:
        owner: Any = self.request.user
        return NotificationChannel.objects.filter(user=owner)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.save(user=self.request.user)

    @extend_schema(
        parameters=[IF_MATCH],
        request=SecretRotationSerializer,
        responses={200: RotatedSecretSerializer, 409: OpenApiResponse(description="Not a webhook channel.")},
        summary="Give one of your webhook channels a new signing secret, the former one signing beside it a while",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        channel = self.get_object()
        version = expected_version(request, NotificationChannel, channel.pk)
        body = SecretRotationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if channel.channel != Notification.Channel.WEBHOOK:
            raise Conflict("Only webhook channels are signed; this one has no secret to rotate.")
        rotated = webhook_secret_rotate(
            signed=channel, window=timedelta(hours=body.validated_data["window_hours"]), expected_version=version
        )
        assert isinstance(rotated, NotificationChannel)  # a user's channel, never an admin's endpoint
        return with_etag(Response(RotatedSecretSerializer(rotated).data), rotated)


# --- /api/v1/me/notification-preferences/ ------------------------------------------------------------------------
@extend_schema_field(
    {
        "type": "object",
        "description": "Each ticket event a user may hear about by e-mail: true to get it (the default), false not to.",
        "properties": {
            name: {"type": "boolean", "description": event.label} for name, event in ticket_notifications.EVENTS.items()
        },
        "additionalProperties": False,
    }
)
class NotificationEventsField(serializers.Field):
    """{event name: true or false}; an unknown event or a value other than a boolean is named in the 400."""

    def to_internal_value(self, data: Any) -> dict[str, bool]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected an object of event names and true or false.")
        errors = {}
        for name, value in data.items():
            if name not in ticket_notifications.EVENTS:
                errors[name] = [f"Not a ticket event. Choose among: {', '.join(ticket_notifications.EVENTS)}."]
            elif not isinstance(value, bool):
                errors[name] = ["Must be true or false."]
        if errors:
            raise serializers.ValidationError(errors)
        return dict(data)

    def to_representation(self, value: Any) -> Any:
        return value


class NotificationPreferencesSerializer(StrictSerializer):
    email = serializers.BooleanField(required=False, help_text="Off: no ticket e-mail at all.")
    events = NotificationEventsField(required=False)


class NotificationPreferencesView(APIView):
    """What the signed-in user hears about tickets by e-mail. PUT and PATCH change what they name."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=NotificationPreferencesSerializer, summary="Your ticket e-mail preferences")
    def get(self, request: Request) -> Response:
        return Response(ticket_notifications.preferences_of(request.user))

    @extend_schema(
        request=NotificationPreferencesSerializer,
        responses=NotificationPreferencesSerializer,
        summary="Change your ticket e-mail preferences (only what the body names)",
    )
    def put(self, request: Request) -> Response:
        body = NotificationPreferencesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(ticket_notifications.preferences_set(user=request.user, **body.validated_data))

    @extend_schema(
        request=NotificationPreferencesSerializer,
        responses=NotificationPreferencesSerializer,
        summary="Change your ticket e-mail preferences (only what the body names)",
    )
    def patch(self, request: Request) -> Response:
        return self.put(request)
