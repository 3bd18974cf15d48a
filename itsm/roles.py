"""The words of the permission rules, said once: the three roles and who has which.

Roles are Django groups: requester (the default), agent, admin. A superuser is an admin. Every check of a role,
in Python (`role_of`, `is_admin`, `is_staff_role`, `sees_public_view_only`) or in a query (`admins_q`, `staff_q`,
`role_q`), is derived from `role_from` and the groups named here, so the API, the admin, paging and the token lookup
agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q


class Role(StrEnum):
    REQUESTER = "requester"
    AGENT = "agent"
    ADMIN = "admin"


# The roles that work every ticket, highest first.
STAFF_ROLES = (Role.ADMIN, Role.AGENT)


def role_from(*, is_superuser: bool, group_names: Iterable[str]) -> Role:
    """The rule: a superuser or a member of the admin group is an admin; else the agent group makes an agent."""
    names = set(group_names)
    if is_superuser or Role.ADMIN in names:
        return Role.ADMIN
    return Role.AGENT if Role.AGENT in names else Role.REQUESTER


def role_of(user: Any) -> Role:
    """The user's role, read once per user object (from its prefetched groups when there are, else one query)."""
    cached = getattr(user, "_itsm_role", None)
    if cached is not None:
        return cached
    if not getattr(user, "is_authenticated", False):
        role = Role.REQUESTER
    else:
        role = role_from(is_superuser=user.is_superuser, group_names=(group.name for group in user.groups.all()))
    remember_role(user, role)
    return role


def remember_role(user: Any, role: Role) -> None:
    """For code that read the role with the user (the token lookup), so `role_of` asks nothing more."""
    user._itsm_role = role


def is_admin(user: Any) -> bool:
    """Admins do everything, including deletes, backups, users and running jobs."""
    return role_of(user) == Role.ADMIN


def is_staff_role(user: Any) -> bool:
    """Agents and admins work every ticket."""
    return role_of(user) in STAFF_ROLES


def sees_public_view_only(user: Any) -> bool:
    """Requesters (and anonymous visitors) see incidents and maintenance windows only as the status page shows them
    (their public ones, the public fields: itsm.models.incidents.PUBLIC_FIELDS and itsm.models.maintenance's), and no
    alerts at all. Agents and admins see everything."""
    return not is_staff_role(user)


def _in_groups(*roles: Role) -> Q:
    # A subquery, not a join, so that a user in several groups is found once.
    return Q(pk__in=get_user_model().objects.filter(groups__name__in=roles).values("pk"))


def admins_q() -> Q:
    """The users whose role is admin, as a filter of the user model."""
    return Q(is_superuser=True) | _in_groups(Role.ADMIN)


def staff_q() -> Q:
    """The users whose role is agent or admin."""
    return Q(is_superuser=True) | _in_groups(*STAFF_ROLES)


def role_q(role: Role) -> Q:
    """The users whose role is exactly `role`, with the precedence of `role_from`."""
    if role == Role.ADMIN:
        return admins_q()
    if role == Role.AGENT:
        return _in_groups(Role.AGENT) & ~admins_q()
    return ~staff_q()


class Scope(StrEnum):
    """What an integration token (a non-human caller: itsm.models.integrations) may do, on top of its account's
    role: read everything an agent reads, work tickets, work incidents, or everything an admin does."""

    READ = "read"
    TICKETS = "tickets"
    INCIDENTS = "incidents"
    ADMIN = "admin"


# The API's collections (the first segment after /api/v1/) each scope reads and writes. None: every collection.
# Sign-in and personal settings ("auth", "me") are for people and are in no scope: an integration token cannot log
# itself out, end every other token of its account, or set notification preferences.
_SCOPE_READS: dict[Scope, frozenset[str] | None] = {
    Scope.READ: None,
    Scope.TICKETS: frozenset({"", "tickets", "attachments", "services", "teams"}),
    Scope.INCIDENTS: frozenset({"", "incidents", "alerts", "maintenance-windows", "services", "teams", "oncall"}),
    Scope.ADMIN: None,
}
_SCOPE_WRITES: dict[Scope, frozenset[str] | None] = {
    Scope.READ: frozenset(),
    Scope.TICKETS: frozenset({"tickets", "attachments"}),
    Scope.INCIDENTS: frozenset({"incidents", "alerts", "maintenance-windows"}),
    Scope.ADMIN: None,
}
_PEOPLE_ONLY = frozenset({"auth", "me"})
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def scope_role(scope: Scope) -> Role:
    """The role of an integration account: an admin for the admin scope, an agent for the others."""
    return Role.ADMIN if scope == Scope.ADMIN else Role.AGENT


def scope_allows(scope: Scope, *, method: str, collection: str) -> bool:
    """Whether a token of this scope may send `method` to this API collection. The account's role still applies
    after this: a tickets token is an agent, so it cannot delete a ticket."""
    if collection in _PEOPLE_ONLY:
        return False
    allowed = _SCOPE_READS[scope] if method.upper() in _READ_METHODS else _SCOPE_WRITES[scope]
    return allowed is None or collection in allowed
