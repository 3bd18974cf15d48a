"""Every route of the project with who may call it. A route missing here fails test_every_route_is_classified.

`who` says the least role that may call the operation:
- public: anyone, no token (health, status, schema, docs, login, the API root, metrics);
- session: a site of HTML pages signed in with a session (the admin, the portal), classified as a whole;
- bearer: its own bearer token, not a user's (Alertmanager's webhook);
- signed_in: any user with a token; staff: agents and admins; admin: admins only.
`target` names the kind of seeded object whose id fills the URL; `owned` marks objects that belong to one user
(a requester's ticket, anyone's notification channel), which other users must get as 404, never 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Op:
    who: str
    target: str | None = None


S, STAFF, ADMIN = Op("signed_in"), Op("staff"), Op("admin")


def _crud(target: str, read: str, write: str, delete: str) -> dict[tuple[str, str], Op]:
    return {
        (f"{target}-list", "GET"): Op(read),
        (f"{target}-list", "POST"): Op(write),
        (f"{target}-detail", "GET"): Op(read, target),
        (f"{target}-detail", "PUT"): Op(write, target),
        (f"{target}-detail", "PATCH"): Op(write, target),
        (f"{target}-detail", "DELETE"): Op(delete, target),
    }


OPERATIONS: dict[tuple[str, str], Op] = {
    ("health", "GET"): Op("public"),
    ("favicon", "GET"): Op("public"),
    ("status", "GET"): Op("public"),
    ("status-json", "GET"): Op("public"),
    ("prometheus-django-metrics", "GET"): Op("public"),
    ("schema", "GET"): Op("public"),
    ("api-docs", "GET"): Op("public"),
    ("api-root", "GET"): Op("public"),
    ("admin", "GET"): Op("session"),
    ("portal", "GET"): Op("session"),
    # Single sign-on (itsm/portal/single_sign_on.py): anyone may start one or come back from the provider; a 404
    # while no provider is configured. Signing out ends whatever session there is.
    ("oidc_authentication_init", "GET"): Op("public"),
    ("oidc_authentication_callback", "GET"): Op("public"),
    ("oidc_logout", "GET"): Op("public"),
    ("oidc_logout", "POST"): Op("public"),
    ("auth-token", "POST"): Op("public"),
    ("auth-logout", "POST"): S,
    ("auth-logoutall", "POST"): S,
    ("alertmanager-intake", "POST"): Op("bearer"),
    ("incident-report", "GET"): S,
    ("ticket-report", "GET"): STAFF,
    ("me-notification-preferences", "GET"): S,
    ("me-notification-preferences", "PUT"): S,
    ("me-notification-preferences", "PATCH"): S,
    **_crud("ticket", "signed_in", "signed_in", "admin"),
    ("ticket-comments", "GET"): Op("signed_in", "ticket"),
    ("ticket-comments", "POST"): Op("signed_in", "ticket"),
    ("ticket-events", "GET"): Op("signed_in", "ticket"),
    ("ticket-transition", "POST"): Op("signed_in", "ticket"),
    ("ticket-attachments", "GET"): Op("signed_in", "ticket"),
    ("ticket-attachments", "POST"): Op("signed_in", "ticket"),
    # A rated ticket: its rating reads 200 to whoever sees the ticket (an unrated one is a 404 to everyone).
    ("ticket-rating", "GET"): Op("signed_in", "rated-ticket"),
    ("ticket-rating", "POST"): Op("signed_in", "rated-ticket"),
    ("attachment-download", "GET"): Op("signed_in", "attachment"),
    ("attachment-detail", "DELETE"): Op("admin", "attachment"),
    **_crud("incident", "signed_in", "staff", "admin"),
    ("incident-transition", "POST"): Op("staff", "incident"),
    ("incident-timeline", "GET"): Op("signed_in", "incident"),
    ("incident-timeline", "POST"): Op("staff", "incident"),
    ("incident-postmortem", "GET"): Op("staff", "incident"),
    ("incident-postmortem", "PUT"): Op("staff", "incident"),
    ("incident-action-items", "POST"): Op("staff", "incident"),
    # Alerts name instances and addresses: requesters see incidents as the status page shows them, and no alerts.
    ("alert-list", "GET"): STAFF,
    ("alert-detail", "GET"): Op("staff", "alert"),
    **_crud("maintenance-window", "signed_in", "staff", "admin"),
    ("maintenance-window-transition", "POST"): Op("staff", "maintenance-window"),
    ("maintenance-window-events", "GET"): Op("staff", "maintenance-window"),
    **_crud("service", "signed_in", "admin", "admin"),
    **_crud("team", "signed_in", "admin", "admin"),
    ("backup-list", "GET"): STAFF,
    ("backup-list", "POST"): ADMIN,
    ("backup-detail", "GET"): Op("staff", "backup"),
    ("backup-verify", "POST"): Op("admin", "backup"),
    ("recovery-drill-list", "GET"): STAFF,
    ("recovery-drill-detail", "GET"): Op("staff", "recovery-drill"),
    ("job-list", "GET"): STAFF,
    ("job-detail", "GET"): Op("staff", "job"),
    ("job-run", "POST"): Op("admin", "job"),
    ("oncall-list", "GET"): S,
    ("notification-list", "GET"): S,
    ("notification-detail", "GET"): Op("signed_in", "notification"),
    ("notification-redeliver", "POST"): Op("staff", "notification"),
    **_crud("notification-channel", "signed_in", "signed_in", "signed_in"),
    ("notification-channel-rotate-secret", "POST"): Op("signed_in", "notification-channel"),
    ("audit-list", "GET"): ADMIN,
}

# Objects that belong to one user: anyone else (staff included, for channels) gets 404. An attachment is its
# ticket's requester's, or, on an internal note, the staff's.
OWNED = {"ticket", "rated-ticket", "notification", "notification-channel", "attachment"}
# Staff see every ticket, notification and attachment; a channel is its owner's alone.
STAFF_SEE_ALL = {"ticket", "rated-ticket", "notification", "attachment"}


# Session-authenticated sites, by namespace: where each sends an anonymous visitor, and its front page.
SITES = {"admin": ("/admin/login/", "admin:index"), "portal": ("/portal/sign-in/", "portal:tickets")}


@dataclass(frozen=True)
class Route:
    name: str
    methods: tuple[str, ...]
    kwargs: tuple[str, ...]
    format_suffix: bool


def _methods(pattern: URLPattern) -> tuple[str, ...]:
    callback = pattern.callback
    actions = getattr(callback, "actions", None)
    if actions:
        # DRF adds "head" to a viewset's actions on its first request: HEAD follows GET, so it is not listed.
        return tuple(sorted(method.upper() for method in actions if method.upper() in METHODS))
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:  # a plain function view: it answers GET (and refuses the rest itself)
        return ("GET",)
    return tuple(method for method in METHODS if hasattr(view_class, method.lower()))


def _walk(patterns: list[URLPattern | URLResolver]) -> Iterator[URLPattern | str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            # The Django admin and the requester portal are session-authenticated sites of HTML pages: each is
            # classified as a whole here (tests/portal/ checks every page of the portal for every persona).
            yield from [pattern.namespace] if pattern.namespace in SITES else _walk(pattern.url_patterns)
        else:
            yield pattern


def project_routes() -> list[Route]:
    """Every named route of the URLconf with the HTTP methods its view serves. The catch-all JSON 404 under
    /api/ has no name and no operation, so it is left out."""
    routes = []
    for pattern in _walk(get_resolver().url_patterns):
        if pattern in SITES:
            routes.append(Route(pattern, ("GET",), (), False))
            continue
        assert isinstance(pattern, URLPattern)
        if pattern.name is None:
            continue
        groups = set(pattern.pattern.regex.groupindex)
        routes.append(Route(pattern.name, _methods(pattern), tuple(sorted(groups - {"format"})), "format" in groups))
    return routes


def operations() -> set[tuple[str, str]]:
    return {(route.name, method) for route in project_routes() for method in route.methods}
