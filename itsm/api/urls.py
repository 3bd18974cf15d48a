from django.urls import path
from rest_framework import routers
from rest_framework.permissions import AllowAny

from itsm.api.auth import LogoutView, ObtainTokenView
from itsm.api.catalog import ServiceViewSet, TeamViewSet
from itsm.api.tickets import TicketViewSet


class APIRootView(routers.APIRootView):
    """The API root: a link to every collection. Open to all, so a probe or a new user can find their way."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []


class Router(routers.DefaultRouter):
    APIRootView = APIRootView


router = Router()
router.register("tickets", TicketViewSet, basename="ticket")
router.register("services", ServiceViewSet, basename="service")
router.register("teams", TeamViewSet, basename="team")

urlpatterns = [
    path("auth/token/", ObtainTokenView.as_view(), name="auth-token"),
    path("auth/logout/", LogoutView.as_view(), name="auth-logout"),
    *router.urls,
]
