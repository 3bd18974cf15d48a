from django.urls import path
from rest_framework import routers
from rest_framework.permissions import AllowAny

from itsm.api.alerts import AlertmanagerIntakeView, AlertViewSet
from itsm.api.attachments import AttachmentViewSet
from itsm.api.audit import AuditEntryViewSet
from itsm.api.auth import LogoutAllView, LogoutView, ObtainTokenView
from itsm.api.backups import BackupViewSet
from itsm.api.catalog import ServiceViewSet, TeamViewSet
from itsm.api.incidents import IncidentViewSet
from itsm.api.jobs import JobViewSet
from itsm.api.maintenance import MaintenanceWindowViewSet
from itsm.api.notifications import NotificationChannelViewSet, NotificationPreferencesView, NotificationViewSet
from itsm.api.oncall import OnCallViewSet
from itsm.api.pitr import RecoveryDrillViewSet
from itsm.api.reports import IncidentReportView, TicketReportView
from itsm.api.tickets import TicketViewSet


class APIRootView(routers.APIRootView):
    """The API root: a link to every collection. Open to all, so a probe or a new user can find their way."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []


class Router(routers.DefaultRouter):
    APIRootView = APIRootView


router = Router()
router.register("tickets", TicketViewSet, basename="ticket")
router.register("attachments", AttachmentViewSet, basename="attachment")
router.register("incidents", IncidentViewSet, basename="incident")
router.register("alerts", AlertViewSet, basename="alert")
router.register("maintenance-windows", MaintenanceWindowViewSet, basename="maintenance-window")
router.register("services", ServiceViewSet, basename="service")
router.register("teams", TeamViewSet, basename="team")
# Before backups, so "drills" is not taken for a backup id.
router.register("backups/drills", RecoveryDrillViewSet, basename="recovery-drill")
router.register("backups", BackupViewSet, basename="backup")
router.register("jobs", JobViewSet, basename="job")
router.register("oncall", OnCallViewSet, basename="oncall")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("notification-channels", NotificationChannelViewSet, basename="notification-channel")
router.register("audit", AuditEntryViewSet, basename="audit")

urlpatterns = [
    path("auth/token/", ObtainTokenView.as_view(), name="auth-token"),
    path("auth/logout/", LogoutView.as_view(), name="auth-logout"),
    path("auth/logoutall/", LogoutAllView.as_view(), name="auth-logoutall"),
    # Before the router, so "alertmanager" is not taken for an alert id.
    path("alerts/alertmanager/", AlertmanagerIntakeView.as_view(), name="alertmanager-intake"),
    path("reports/incidents/", IncidentReportView.as_view(), name="incident-report"),
    path("reports/tickets/", TicketReportView.as_view(), name="ticket-report"),
    path("me/notification-preferences/", NotificationPreferencesView.as_view(), name="me-notification-preferences"),
    *router.urls,
]
