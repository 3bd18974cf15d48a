from django.conf import settings
from django.db import models

from itsm.roles import Scope


class IntegrationToken(models.Model):
    """An API token for a non-human caller (a monitoring system, a script, another tool), with a scope and a fixed
    expiry (itsm.services.integrations). It acts as an account of its own, created with it, which cannot sign in
    with a password; what it did is recorded under that account's name.

    Unlike a person's token (knox: sliding expiry, at most ITSM_TOKEN_MAX_AGE_HOURS old), it lives until its expiry
    or until an admin revokes it. Only a SHA-256 of the token is stored; the token is shown once, when issued.
    """

    name = models.CharField(max_length=100, unique=True)
    account = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="integration_token")
    scope = models.CharField(max_length=20, choices=[(scope.value, scope.value) for scope in Scope])
    # The first characters of the secret after its prefix, to find the row; the digest proves the rest.
    key = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    expires_at = models.DateTimeField()
    # Written at most once a minute (itsm.services.integrations.USE_RECORDED_EVERY).
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope})"
