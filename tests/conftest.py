"""Personas and clients. Tests read like sentences: the requester cannot see the other requester's ticket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from itsm.queries.audit import audited_models
from tests.factories import make_user
from tests.parallel import (
    django_db_modify_db_settings,
    pytest_collection_modifyitems,
    pytest_unconfigure,
    pytest_xdist_make_scheduler,
    pytest_xdist_setupnodes,
)

# The hooks that give each pytest-xdist worker its own Redis databases and var directory, group the tests that
# share a fixture, and start each worker's test database from a migrated template (tests/parallel.py).
__all__ = [
    "django_db_modify_db_settings",
    "pytest_collection_modifyitems",
    "pytest_unconfigure",
    "pytest_xdist_make_scheduler",
    "pytest_xdist_setupnodes",
]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """PBKDF2 with its production work factor costs ~0.3 s per user; tests check passwords, not their cost."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def _media_root(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def _uploads_outside_the_work_tree(settings: Any, _media_root: Any) -> None:
    """Attachments that tests store go to a temporary MEDIA_ROOT, never to var/media of the checkout."""
    settings.MEDIA_ROOT = _media_root


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    """Login throttles and cached values must not leak from one test into the next."""
    cache.clear()
    yield
    cache.clear()


def _warm_content_types() -> None:
    """The audit trail reads each model's content type once per process and keeps it (ContentType's cache). A
    budget counts the steady state, not whether an earlier test in the same worker happened to warm it."""
    ContentType.objects.get_for_models(*audited_models().values())


@pytest.fixture
def django_assert_num_queries(django_assert_num_queries: Callable[..., Any]) -> Callable[..., Any]:
    def counted(num: int, *args: Any, **kwargs: Any) -> Any:
        _warm_content_types()
        return django_assert_num_queries(num, *args, **kwargs)

    return counted


@pytest.fixture
def django_assert_max_num_queries(django_assert_max_num_queries: Callable[..., Any]) -> Callable[..., Any]:
    def counted(num: int, *args: Any, **kwargs: Any) -> Any:
        _warm_content_types()
        return django_assert_max_num_queries(num, *args, **kwargs)

    return counted


@pytest.fixture
def requester(db: Any) -> Any:
    return make_user("rita", "requester")


@pytest.fixture
def other_requester(db: Any) -> Any:
    return make_user("oscar", "requester")


@pytest.fixture
def agent(db: Any) -> Any:
    return make_user("alice", "agent")


@pytest.fixture
def admin(db: Any) -> Any:
    return make_user("adam", "admin")


@pytest.fixture
def client_for(db: Any) -> Callable[[Any], APIClient]:
    """An API client that signs in with a real (hashed, expiring) token of the given user."""

    def make(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            _, token = AuthToken.objects.create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return client

    return make


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def as_requester(client_for: Callable[[Any], APIClient], requester: Any) -> APIClient:
    return client_for(requester)


@pytest.fixture
def as_other_requester(client_for: Callable[[Any], APIClient], other_requester: Any) -> APIClient:
    return client_for(other_requester)


@pytest.fixture
def as_agent(client_for: Callable[[Any], APIClient], agent: Any) -> APIClient:
    return client_for(agent)


@pytest.fixture
def as_admin(client_for: Callable[[Any], APIClient], admin: Any) -> APIClient:
    return client_for(admin)


@pytest.fixture
def operator(admin: Any) -> Client:
    """The Django admin, signed in as the admin."""
    client = Client()
    client.force_login(admin)
    return client


def page_text(response: Any) -> str:
    return str(response.content.decode())


@pytest.fixture
def api_health_served(live_server: Any, settings: Any) -> str:
    """A maintenance window's api_health check calls the real /health/ of pytest-django's live server."""
    settings.ITSM_API_HEALTH_URL = f"{live_server.url}/health/"
    return str(settings.ITSM_API_HEALTH_URL)


@pytest.fixture
def open_browser(live_server: Any, tmp_path: Any) -> Iterator[Callable[..., Any]]:
    """Start headless Chromium sessions on the live server (tests/browser.py); each is closed after the test."""
    from tests.browser import Browser  # selenium is read only by the browser tests

    sessions: list[Browser] = []

    def start(name: str = "") -> Browser:
        sessions.append(Browser(live_server.url, tmp_path, name))
        return sessions[-1]

    yield start
    for session in sessions:
        session.quit()


@pytest.fixture
def browser(open_browser: Callable[..., Any]) -> Any:
    return open_browser()
