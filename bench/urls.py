"""The platform's URLs plus the ceilings: a bare Django view and minimal DRF views over the ticket table."""

from django.urls import path

from bench.views import (
    AnonymousMinimalDrfTicket,
    BareDjangoTickets,
    MinimalDrfCreateTicket,
    MinimalDrfMyTicket,
    MinimalDrfMyTickets,
    MinimalDrfTicket,
    MinimalDrfTickets,
)
from itsm_project.urls import handler400, handler403, handler404, handler500
from itsm_project.urls import urlpatterns as platform_urls

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("bench/django/tickets/", BareDjangoTickets.as_view(), name="bench-django-tickets"),
    path("bench/drf/tickets/", MinimalDrfTickets.as_view(), name="bench-drf-tickets"),
    path("bench/drf/ticket/<int:pk>/", MinimalDrfTicket.as_view(), name="bench-drf-ticket"),
    path("bench/drf/anonymous-ticket/<int:pk>/", AnonymousMinimalDrfTicket.as_view(), name="bench-drf-anon-ticket"),
    path("bench/drf/create/", MinimalDrfCreateTicket.as_view(), name="bench-drf-create"),
    path("bench/drf/my-tickets/", MinimalDrfMyTickets.as_view(), name="bench-drf-my-tickets"),
    path("bench/drf/my-tickets/<int:pk>/", MinimalDrfMyTicket.as_view(), name="bench-drf-my-ticket"),
    *platform_urls,
]
