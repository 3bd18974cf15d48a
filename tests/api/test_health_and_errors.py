"""Operational endpoints and JSON errors everywhere."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

URL = "/api/v1/tickets/"
# A real Redis URL on a port where nothing listens: connections are refused, as when Redis is stopped.
DEAD_REDIS = {
    "default": {
        "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "IGNORE_EXCEPTIONS": True,
            "SOCKET_CONNECT_TIMEOUT": 0.25,
            "SOCKET_TIMEOUT": 0.25,
        },
    }
}


@pytest.mark.django_db
class TestHealth:
    def test_health_is_ok_with_every_dependency_up(self, as_agent):
        response = as_agent.get("/health/")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert {name: check["status"] for name, check in body["checks"].items()} == {
            "database": "ok",
            "cache": "ok",
            "broker": "ok",
        }

    def test_with_redis_stopped_health_is_degraded_and_tickets_still_work(self, anonymous, as_requester, as_admin):
        with override_settings(CACHES=DEAD_REDIS, CELERY_BROKER_URL="redis://127.0.0.1:1/1"):
            health = as_admin.get("/health/")
            public = anonymous.get("/health/")
            created = as_requester.post(URL, {"title": "Works without Redis"}, format="json")
            listed = as_requester.get(URL)
            login = anonymous.post("/api/v1/auth/token/", {"username": "rita", "password": "wrong"}, format="json")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["checks"]["cache"]["status"] == "down"
        assert health.json()["checks"]["broker"]["status"] == "down"
        assert health.json()["checks"]["database"]["status"] == "ok"
        assert health.json()["checks"]["cache"]["error"]
        assert health.json()["checks"]["broker"]["error"]
        # Anonymous callers get the status word only: no connection details, no exception text.
        assert (public.status_code, public.json()) == (200, {"status": "degraded"})
        assert created.status_code == 201
        assert listed.status_code == 200
        assert len(listed.json()["results"]) == 1
        assert login.status_code == 400

    def test_anonymous_callers_and_requesters_get_the_status_word_only(self, anonymous, as_requester, operator):
        assert anonymous.get("/health/").json() == {"status": "ok"}
        assert as_requester.get("/health/").json() == {"status": "ok"}
        wrong_token = anonymous.get("/health/", HTTP_AUTHORIZATION="Token " + "0" * 64)
        assert (wrong_token.status_code, wrong_token.json()) == (200, {"status": "ok"})
        # An admin signed in to the admin site reads the detail there.
        assert set(operator.get("/health/").json()) == {"status", "read_only", "checks"}

    def test_health_needs_no_login_and_is_never_cached(self, anonymous):
        response = anonymous.get("/health/")
        assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]

    def test_health_refuses_other_methods_with_json(self, anonymous):
        assert anonymous.post("/health/").status_code == 405


@pytest.mark.django_db
class TestErrors:
    @pytest.mark.parametrize("path", ["/nope", "/api/v1/nope/", "/api/v2/tickets/", "/api/v1/tickets/abc/"])
    def test_unmatched_urls_are_json_404(self, as_agent, path):
        response = as_agent.get(path)
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["detail"]

    @pytest.mark.parametrize("path", ["/api/v1/auth/login/", "/api/v1/nope/", "/admin/login/"])
    def test_a_post_without_csrf_cookie_is_json_never_html(self, path):
        # A real client enforces CSRF (the test client does not by default): unknown API URLs are 404, a form
        # post without its cookie is 403, and both are JSON.
        response = Client(enforce_csrf_checks=True).post(path, {"username": "x"})
        assert response.status_code == (403 if path.startswith("/admin/") else 404)
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["code"] in {"csrf_failed", "not_found"}

    def test_a_missing_ticket_is_json_404(self, as_agent):
        response = as_agent.get(f"{URL}999999/")
        assert response.status_code == 404
        assert response.json()["detail"]

    def test_an_unsupported_method_is_json_405(self, as_agent):
        response = as_agent.put(URL, {}, format="json")
        assert response.status_code == 405
        assert response.json()["detail"]

    def test_api_root_lists_every_collection_without_login(self, anonymous):
        response = anonymous.get("/api/v1/")
        assert response.status_code == 200
        assert {"tickets", "services", "teams"} <= set(response.json())

    def test_metrics_are_exported_in_prometheus_format(self, anonymous, as_requester):
        as_requester.post(URL, {"title": "Count me"}, format="json")
        response = anonymous.get("/metrics")
        assert response.status_code == 200
        text = response.content.decode()
        assert "itsm_tickets_created_total" in text
        assert "django_http_requests_latency_seconds_by_view_method" in text


METRICS_TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def metrics_token(settings):
    settings.ITSM_METRICS_TOKEN = METRICS_TOKEN
    settings.ITSM_METRICS_TOKEN_FALLBACKS = ["former-metrics-token"]


@pytest.mark.django_db
@pytest.mark.usefixtures("metrics_token")
class TestMetricsToken:
    def test_an_anonymous_scrape_is_refused_with_json_401(self):
        response = Client().get("/metrics")
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert "itsm_" not in response.content.decode()

    def test_a_wrong_token_is_refused(self):
        response = Client().get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}x"})
        assert response.status_code == 401

    def test_the_token_under_another_scheme_is_refused(self):
        response = Client().get("/metrics", headers={"Authorization": f"Token {METRICS_TOKEN}"})
        assert response.status_code == 401

    def test_the_right_token_gets_the_metrics(self):
        response = Client().get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert response.status_code == 200
        assert "django_http_requests_latency_seconds_by_view_method" in response.content.decode()

    def test_a_former_token_still_works_during_a_rotation(self):
        response = Client().get("/metrics", headers={"Authorization": "Bearer former-metrics-token"})
        assert response.status_code == 200


@pytest.mark.django_db
class TestMetricsWithoutToken:
    """`make run`: no token configured, so a Prometheus on the same machine scrapes, and nobody else."""

    @pytest.fixture(autouse=True)
    def _no_token(self, settings):
        settings.ITSM_METRICS_TOKEN = ""
        settings.ITSM_METRICS_TOKEN_FALLBACKS = []

    def test_a_loopback_caller_gets_the_metrics(self):
        assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200

    def test_a_caller_from_elsewhere_is_refused(self):
        assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 401
