from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from itsm.api import errors
from itsm.api.health import health, metrics
from itsm.status_page import status_html, status_json


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask every site for /favicon.ico (the admin's pages name no icon): the platform's, not a 404."""
    return HttpResponsePermanentRedirect(static("itsm/favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("health/", health, name="health"),
    path("status/", status_html, name="status"),
    path("status.json", status_json, name="status-json"),
    path("metrics", metrics, name="prometheus-django-metrics"),
    path("admin/", admin.site.urls),
    path("portal/", include("itsm.portal.urls")),
    path("oidc/", include("itsm.portal.single_sign_on")),
    path("api/v1/", include("itsm.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # With DEBUG on, Django would answer unmatched URLs with its HTML debug page: keep them JSON.
    re_path(r"^api/", errors.not_found_view),
]

# HTML under /portal/, JSON everywhere else.
handler400 = "itsm_project.errors.bad_request"
handler403 = "itsm_project.errors.permission_denied"
handler404 = "itsm_project.errors.page_not_found"
handler500 = "itsm_project.errors.server_error"
