"""The ceiling of the benchmark: what Django and DRF themselves serve from the same table on the same machine.

Both answer the first page (25 rows, newest first) with the ticket API's fields, without authentication,
filters or pagination links. The DRF view keeps DRF's stock JSON renderer, so the ceiling does not move when
the platform's renderer changes.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views import View
from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer

from itsm.api.tickets import TicketSerializer
from itsm.models import Ticket

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
