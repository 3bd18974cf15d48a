"""Directory sign-in (LDAP and Active Directory) through django-auth-ldap: on every successful sign-in the user's
directory groups set its role (ITSM_LDAP_ADMIN_GROUP, ITSM_LDAP_AGENT_GROUP, else requester) and its membership of
the teams ITSM_LDAP_TEAM_GROUPS maps. The password is checked by the directory (a bind as the user) and never
stored: the local account it creates has an unusable password. Installed as an authentication backend only when
ITSM_LDAP_SERVER_URI is set (itsm_project/settings.py), so every sign-in path (API token, admin, portal) reaches
it through django.contrib.auth.authenticate()."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_auth_ldap.backend import LDAPBackend

from itsm.roles import Role
from itsm.services.users import role_set, teams_set


def role_from_groups(group_dns: set[str]) -> Role:
    """The directory's rule beside itsm.roles': the admin group wins over the agent group; no group, a requester."""
    if settings.ITSM_LDAP_ADMIN_GROUP and settings.ITSM_LDAP_ADMIN_GROUP.lower() in group_dns:
        return Role.ADMIN
    if settings.ITSM_LDAP_AGENT_GROUP and settings.ITSM_LDAP_AGENT_GROUP.lower() in group_dns:
        return Role.AGENT
    return Role.REQUESTER


def directory_user_sync(user: Any, group_dns: set[str]) -> None:
    """The role and the mapped teams from the directory's groups (DNs, lower case), as of this sign-in."""
    team_of: dict[str, str] = settings.ITSM_LDAP_TEAM_GROUPS
    role_set(user, role_from_groups(group_dns))
    teams_set(user, member_of={team_of[dn] for dn in group_dns if dn in team_of}, managed=set(team_of.values()))


class DirectoryBackend(LDAPBackend):
    def authenticate_ldap_user(self, ldap_user: Any, password: str) -> Any:
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is not None:
            directory_user_sync(user, {dn.lower() for dn in ldap_user.group_dns})
        return user
