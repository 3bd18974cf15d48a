from django.db import models


class LoginThrottle(models.Model):
    """Failed sign-ins of one bucket: an account from one address, or one address for every account
    (itsm.services.logins); and password-reset requests, per client address and per e-mail address asked for. In the
    database, so the counts outlive a cache outage and every worker shares them.

    The key is a SHA-256 of the bucket's name: a user name typed by a stranger (or a password typed into the name
    field) is not stored.
    """

    class Scope(models.TextChoices):
        ACCOUNT_ADDRESS = "account_address"
        ADDRESS = "address"
        RESET_ADDRESS = "reset_address"
        RESET_EMAIL = "reset_email"

    key = models.CharField(max_length=64, primary_key=True)
    scope = models.CharField(max_length=20, choices=Scope.choices)
    # Attempts that were not (yet) a success: taken before the password is checked, given back on success.
    failures = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField()
    # Past the limit each further failure doubles the wait; no attempt is checked before this time.
    blocked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["last_attempt_at"], name="login_throttle_last_attempt")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key[:12]}: {self.failures}"
