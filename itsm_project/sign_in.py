"""The sign-in settings that are more than one value: django-auth-ldap's AUTH_LDAP_* from a few ITSM_LDAP_*
variables, and the `name=value;name=value` mappings (directory group DN or claim value to team)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

_GROUP_TYPES = ("groupOfNames", "groupOfUniqueNames", "posixGroup", "activeDirectory", "nestedActiveDirectory")


def mapping_from(name: str, raw: str) -> dict[str, str]:
    """`team=value;team=value` (";" because directory DNs hold commas) as {value: team}; the team is a slug."""
    mapping: dict[str, str] = {}
    for pair in filter(None, (item.strip() for item in raw.split(";"))):
        team, sep, value = pair.partition("=")
        if not sep or not team.strip() or not value.strip():
            raise ImproperlyConfigured(f"{name}: {pair!r} is not team-slug=value (pairs separated by ';').")
        mapping[value.strip().lower()] = team.strip()
    return mapping


def ldap_settings(
    *,
    server_uri: str,
    bind_dn: str,
    bind_password: str,
    user_search_base: str,
    user_search_filter: str,
    group_search_base: str,
    group_type: str,
    start_tls: bool,
    ca_file: str,
    timeout: int,
) -> dict[str, Any]:
    """django-auth-ldap's settings: bind with the service account, find the user under the search base, read the
    groups under the group search base. Imported only when a directory is configured."""
    # Here, not at the top: python-ldap loads libldap, needed only when a directory is configured.
    import ldap
    from django_auth_ldap import config

    if not user_search_base:
        raise ImproperlyConfigured("ITSM_LDAP_SERVER_URI is set: set ITSM_LDAP_USER_SEARCH_BASE too.")
    if "%(user)s" not in user_search_filter:
        raise ImproperlyConfigured("ITSM_LDAP_USER_SEARCH_FILTER must contain %(user)s, e.g. (uid=%(user)s).")
    if group_type not in _GROUP_TYPES:
        raise ImproperlyConfigured(f"ITSM_LDAP_GROUP_TYPE must be one of {', '.join(_GROUP_TYPES)}.")
    types = {
        "groupOfNames": (config.GroupOfNamesType, "(objectClass=groupOfNames)"),
        "groupOfUniqueNames": (config.GroupOfUniqueNamesType, "(objectClass=groupOfUniqueNames)"),
        "posixGroup": (config.PosixGroupType, "(objectClass=posixGroup)"),
        "activeDirectory": (config.ActiveDirectoryGroupType, "(objectClass=group)"),
        "nestedActiveDirectory": (config.NestedActiveDirectoryGroupType, "(objectClass=group)"),
    }
    group_class, group_filter = types[group_type]
    options: dict[Any, Any] = {ldap.OPT_NETWORK_TIMEOUT: timeout, ldap.OPT_TIMEOUT: timeout}
    if group_type in ("activeDirectory", "nestedActiveDirectory"):
        options[ldap.OPT_REFERRALS] = 0  # Active Directory's referrals to other domains: not followed
    if ca_file:
        options[ldap.OPT_X_TLS_CACERTFILE] = ca_file
        options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND
        options[ldap.OPT_X_TLS_NEWCTX] = 0  # after the CA file, so the TLS context is built with it
    return {
        "AUTH_LDAP_SERVER_URI": server_uri,
        "AUTH_LDAP_BIND_DN": bind_dn,
        "AUTH_LDAP_BIND_PASSWORD": bind_password,
        "AUTH_LDAP_START_TLS": start_tls,
        "AUTH_LDAP_CONNECTION_OPTIONS": options,
        "AUTH_LDAP_USER_SEARCH": config.LDAPSearch(user_search_base, ldap.SCOPE_SUBTREE, user_search_filter),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "AUTH_LDAP_GROUP_SEARCH": config.LDAPSearch(
            group_search_base or user_search_base, ldap.SCOPE_SUBTREE, group_filter
        ),
        "AUTH_LDAP_GROUP_TYPE": group_class(),
        # The groups are read on every sign-in, so a user moved to another group has the new role next time.
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_FIND_GROUP_PERMS": False,
        "AUTH_LDAP_CACHE_TIMEOUT": 0,
    }
