"""Users and their roles."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Field
from django.db.models.functions import Lower

from itsm.exceptions import InvalidInput
from itsm.models.catalog import Team
from itsm.roles import Role
from itsm.services.versioned import version_bump

TAKEN = "A user with that username already exists (user names are compared without case and width)."


def username_normalise(username: str) -> str:
    """NFKC, as Django's forms store a user name: a full-width `ａｇｅｎｔ` is `agent`. Case is kept as typed; a
    unique index on lower(username) (migration 0019) keeps `Agent` from sitting beside `agent`."""
    return str(get_user_model().normalize_username(username))


def username_taken(username: str, *, other_than: Any = None) -> bool:
    """Whether another user has this name once normalised, in any case."""
    users = (
        get_user_model()
        ._default_manager.alias(name=Lower("username"))
        .filter(name=username_normalise(username).lower())
    )
    if other_than is not None and other_than.pk is not None:
        users = users.exclude(pk=other_than.pk)
    return users.exists()


def user_by_username(username: str) -> Any | None:
    """The user this name names once normalised, in any case (`Agent` and `ａｇｅｎｔ` name `agent`): at most one, by
    the unique index on lower(username), which this lookup uses."""
    users = get_user_model()._default_manager.alias(name=Lower("username"))
    return users.filter(name=username_normalise(username).lower()).first()


logger = logging.getLogger(__name__)


def roles_ensure() -> dict[Role, Group]:
    """The three role groups exist (they are data, created on first use and by the migration)."""
    return {role: Group.objects.get_or_create(name=role.value)[0] for role in Role}


def user_upsert(
    *, username: str, role: str, password: str | None, email: str = "", check_password: bool = True
) -> tuple[Any, bool]:
    """Create or update a user with exactly one role. Returns (user, created)."""
    if role not in Role.__members__.values():
        raise InvalidInput({"role": [f"Unknown role {role!r}: choose requester, agent or admin."]})
    user_model = get_user_model()
    username = username_normalise(username)
    errors: dict[str, list[str]] = {}
    try:
        # The model field's own rules: not empty, the allowed characters, the maximum length.
        username_field = user_model._meta.get_field(user_model.USERNAME_FIELD)
        if isinstance(username_field, Field):
            username_field.clean(username, None)
    except ValidationError as exc:
        errors["username"] = list(exc.messages)
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            errors["email"] = list(exc.messages)
    if errors:
        raise InvalidInput(errors)
    with transaction.atomic():
        if not user_model.objects.filter(username=username).exists() and username_taken(username):
            raise InvalidInput({"username": [TAKEN]})
        user, created = user_model.objects.get_or_create(username=username)
        if email:
            user.email = email
        if password is not None:
            if check_password:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise InvalidInput({"password": list(exc.messages)}) from None
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        role_set(user, Role(role))
    return user, created


def role_set(user: Any, role: Role) -> None:
    """Give a saved or unsaved user exactly this role (saving it): the role group, and the admin's flags."""
    # Admins use the Django admin; agents may too, to work tickets there.
    user.is_staff = role in (Role.ADMIN, Role.AGENT)
    user.is_superuser = role == Role.ADMIN
    user.save()
    groups = roles_ensure()
    # Only the groups held: the audit trail records each removal named (itsm.audit), so none that did not happen.
    stale = [group for group in user.groups.all() if group.name != role]
    if stale:
        user.groups.remove(*stale)
    user.groups.add(groups[role])
    user._itsm_role = role  # what itsm.roles.role_of would read again


def teams_set(user: Any, *, member_of: set[str], managed: set[str]) -> None:
    """Membership of the teams (by slug) an identity source manages: in those of `member_of`, out of the other
    `managed` ones. Teams it does not manage are left as they are; an unknown slug is skipped (logged)."""
    teams = {team.slug: team for team in Team.objects.filter(slug__in=managed)}
    for slug in sorted(managed - set(teams)):
        logger.warning("sign-in maps a group to the team %r, which does not exist", slug)
    held = set(user.teams.filter(slug__in=teams).values_list("slug", flat=True))
    joined = [team for slug, team in teams.items() if slug in member_of and slug not in held]
    left = [team for slug, team in teams.items() if slug not in member_of and slug in held]
    user.teams.add(*joined)
    user.teams.remove(*left)
    # A team's members are part of what its ETag versions (docs/api.md#concurrency): an edit read before this
    # sign-in must not put back the membership it changed.
    for team in [*joined, *left]:
        team.save(update_fields=[version_bump(team)])
