"""The platform's URLs plus the ceiling: a bare Django view and a minimal DRF list view over the ticket table."""

from django.urls import path

from bench.views import BareDjangoTickets, MinimalDrfMyTicket, MinimalDrfMyTickets, MinimalDrfTickets
from itsm_project.urls import handler400, handler403, handler404, handler500
from itsm_project.urls import urlpatterns as platform_urls

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("bench/django/tickets/", BareDjangoTickets.as_view(), name="bench-django-tickets"),
    path("bench/drf/tickets/", MinimalDrfTickets.as_view(), name="bench-drf-tickets"),
    path("bench/drf/my-tickets/", MinimalDrfMyTickets.as_view(), name="bench-drf-my-tickets"),
    path("bench/drf/my-tickets/<int:pk>/", MinimalDrfMyTicket.as_view(), name="bench-drf-my-ticket"),
    *platform_urls,
]
