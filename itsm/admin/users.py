"""Users with their role."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django_otp.plugins.otp_totp.models import TOTPDevice

from itsm.admin.base import AdminRolePermissions
from itsm.admin.privacy import erase_personal_data, export_personal_data
from itsm.roles import Role, role_of, role_q
from itsm.services.two_factor import second_factor_reset
from itsm.services.users import TAKEN, user_upsert, username_taken

User = get_user_model()


class RoleListFilter(admin.SimpleListFilter):
    title = "role"
    parameter_name = "role"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(role.value, role.value.title()) for role in Role]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(role_q(Role(value))) if value in set(Role) else queryset


class UniqueUsernameMixin:
    """A name another user has once normalised (NFKC) and compared without case is refused beside the field,
    rather than by the database's unique index as a server error."""

    instance: Any
    cleaned_data: dict[str, Any]

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]  # NFKC-normalised by Django's UsernameField
        if username_taken(username, other_than=self.instance):
            raise ValidationError(TAKEN, code="unique")
        return str(username)


class UserAddForm(UniqueUsernameMixin, AdminUserCreationForm):
    pass


class UserEditForm(UniqueUsernameMixin, UserChangeForm):
    pass


admin.site.unregister(User)


@admin.register(User)
class ItsmUserAdmin(AdminRolePermissions, UserAdmin):
    list_display = ["username", "email", "role", "two_factor", "is_active", "last_login"]
    list_filter = [RoleListFilter, "is_active"]
    actions = [
        "make_requester",
        "make_agent",
        "make_admin",
        "reset_two_factor",
        export_personal_data,
        erase_personal_data,
    ]
    form = UserEditForm
    add_form = UserAddForm

    def _set_role(self, request: HttpRequest, queryset: QuerySet[Any], role: Role) -> None:
        """Through the user service, so that the user ends with exactly one role group and the matching flags."""
        count = 0
        for user in queryset:
            if user.pk == request.user.pk:
                # Demoting oneself by a stray tick would lock the last admin out.
                self.message_user(request, "Your own role was left unchanged.", messages.WARNING)
                continue
            user_upsert(username=user.get_username(), role=role, password=None)
            count += 1
        self.message_user(request, f"{count} users are now {role}s.", messages.SUCCESS)

    @admin.action(description="Make the selected users requesters")
    def make_requester(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._set_role(request, queryset, Role.REQUESTER)

    @admin.action(description="Make the selected users agents")
    def make_agent(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._set_role(request, queryset, Role.AGENT)

    @admin.action(description="Make the selected users admins")
    def make_admin(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._set_role(request, queryset, Role.ADMIN)

    @admin.action(description="Reset the second factor of the selected users (a lost phone)")
    def reset_two_factor(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """The user's authenticator app and recovery codes stop working; they sign in with their password alone
        and, while ITSM_REQUIRE_2FA_FOR_ADMINS holds for them, set up a new app at once
        (docs/runbooks/lost-second-factor.md)."""
        count = sum(1 for user in queryset if second_factor_reset(user=user, by=f"admin {request.user.get_username()}"))
        self.message_user(request, f"The second factor of {count} users was reset.", messages.SUCCESS)

    @admin.display(description="two factors", boolean=True)
    def two_factor(self, obj: Any) -> bool:
        return bool(obj.has_two_factor)

    @admin.display(description="role")
    def role(self, obj: Any) -> str:
        return role_of(obj)  # from the prefetched groups

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        confirmed = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        return super().get_queryset(request).prefetch_related("groups").annotate(has_two_factor=Exists(confirmed))
