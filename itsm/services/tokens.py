"""API tokens taken back: all of a user's at once (POST /api/v1/auth/logoutall/, a password change, a
deactivation). The sliding expiry and the absolute lifetime are knox's (REST_KNOX's TOKEN_TTL and
AUTO_REFRESH_MAX_TTL), checked by itsm.api.authentication."""

from __future__ import annotations

from typing import Any

from knox.models import AuthToken


def tokens_revoke_all(*, user: Any) -> int:
    """Delete every token of this user; returns how many there were."""
    return AuthToken.objects.filter(user_id=user.pk).delete()[0]
