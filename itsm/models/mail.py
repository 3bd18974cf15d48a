"""Mail in and out of the service desk: the mailboxes read over IMAP, every message received (with what became of
it), the Message-IDs of each ticket's thread, and the addresses that bounced."""

from django.db import models


class Mailbox(models.Model):
    """An IMAP mailbox the platform reads; new mail opens tickets there, replies thread into them.

    A mailbox configured by `ITSM_MAIL_INBOX_URL` has `from_environment` set: its connection comes from the
    setting, the row keeps its state (where reading stopped, the last poll).

    It signs in with a password, or with OAuth2: an access token from the client-credentials grant at
    `oauth2_token_url` (Microsoft 365, which takes no passwords over IMAP)."""

    class Security(models.TextChoices):
        SSL = "ssl", "TLS (imaps, port 993)"
        STARTTLS = "starttls", "STARTTLS (imap, port 143)"
        PLAIN = "plain", "none (loopback only)"

    class Auth(models.TextChoices):
        PASSWORD = "password", "password"
        OAUTH2 = "oauth2", "OAuth2 (client credentials)"

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    from_environment = models.BooleanField(default=False, editable=False)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(default=993)
    security = models.CharField(max_length=10, choices=Security.choices, default=Security.SSL)
    username = models.CharField(max_length=255, blank=True)
    auth = models.CharField("sign in with", max_length=10, choices=Auth.choices, default=Auth.PASSWORD)
    # The password, or with OAuth2 the client secret, is never stored: it is read from a file (a Docker or
    # Kubernetes secret) or the environment.
    password_file = models.CharField(
        "secret file",
        max_length=500,
        blank=True,
        help_text="A file holding the password, or with OAuth2 the client secret.",
    )
    password_env = models.CharField(
        "secret environment variable",
        max_length=100,
        blank=True,
        help_text="Or the name of an environment variable holding it.",
    )
    oauth2_token_url = models.CharField(
        "token URL",
        max_length=500,
        blank=True,
        help_text="Microsoft 365: https://login.microsoftonline.com/TENANT-ID/oauth2/v2.0/token",
    )
    oauth2_client_id = models.CharField(
        "client id", max_length=200, blank=True, help_text="The application (client) id of the app registration."
    )
    oauth2_scope = models.CharField(
        "scope", max_length=500, blank=True, help_text="Microsoft 365: https://outlook.office365.com/.default"
    )
    folder = models.CharField(max_length=200, default="INBOX")
    failed_folder = models.CharField(
        max_length=200, default="ITSM-Failed", help_text="Where messages that cannot be read are moved."
    )
    service = models.ForeignKey(
        "itsm.Service",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The service of the tickets this mailbox opens.",
    )
    priority = models.CharField(max_length=20, default="medium", help_text="The priority of the tickets it opens.")
    # Where reading stopped: the folder's UIDVALIDITY and the highest UID processed (a new UIDVALIDITY starts over).
    uidvalidity = models.BigIntegerField(null=True, blank=True, editable=False)
    last_uid = models.BigIntegerField(default=0, editable=False)
    last_polled_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "mailboxes"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(auth="password") | (~models.Q(oauth2_token_url="") & ~models.Q(oauth2_client_id="")),
                name="mailbox_oauth2_complete",
                violation_error_message="Signing in with OAuth2 needs a token URL and a client id.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class InboundMessage(models.Model):
    """One message read from a mailbox and what became of it. Its identity (mailbox, UIDVALIDITY, UID) is unique
    and written in the same transaction as its effect, so a message is processed once however often it is read."""

    class Status(models.TextChoices):
        TICKET_CREATED = "ticket_created", "opened a ticket"
        REPLY_THREADED = "reply_threaded", "threaded as a reply"
        IGNORED = "ignored", "ignored (automatic mail, a bounce, a duplicate)"
        REFUSED = "refused", "refused (unknown sender, too many tickets)"
        FAILED = "failed", "failed (could not be read)"

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="messages")
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()
    message_id = models.CharField(max_length=500, blank=True)
    sender = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    # Why it was ignored, refused or failed; for a failure the error, for a ticket what was left out (an attachment).
    detail = models.TextField(blank=True)
    ticket = models.ForeignKey(
        "itsm.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_messages"
    )
    comment = models.ForeignKey("itsm.Comment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The message as received, for audit and for retrying a failure; cut at ITSM_MAIL_KEEP_RAW_BYTES.
    raw = models.BinaryField()
    raw_truncated = models.BooleanField(default=False)
    size = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=1)
    received_at = models.DateTimeField(db_index=True)
    processed_at = models.DateTimeField()

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "uidvalidity", "uid"], name="uniq_inbound_message_uid"),
        ]
        indexes = [
            models.Index(fields=["mailbox", "message_id"], name="idx_inbound_message_id"),
            models.Index(fields=["sender", "status", "received_at"], name="idx_inbound_sender"),
            models.Index(fields=["status", "-received_at"], name="idx_inbound_status"),
        ]

    # Set (not stored) on a record that services.mail found already processed by an earlier read.
    before = False

    def __str__(self) -> str:
        return f"{self.sender}: {self.subject[:60]} ({self.status})"


class ThreadMessageId(models.Model):
    """A Message-ID of a ticket's mail thread: each message the platform sent about the ticket and each one it
    received for it. An incoming reply names one of these in In-Reply-To or References."""

    message_id = models.CharField(max_length=500, unique=True)
    ticket = models.ForeignKey("itsm.Ticket", on_delete=models.CASCADE, related_name="thread_ids")
    outgoing = models.BooleanField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="idx_thread_id_ticket")]

    def __str__(self) -> str:
        return f"<{self.message_id}> of ticket {self.ticket_id}"


class SuppressedAddress(models.Model):
    """An address that bounced for good: no more mail goes to it until an admin removes the row."""

    address = models.CharField(max_length=320, unique=True)
    reason = models.TextField(blank=True)
    status = models.CharField(max_length=20, blank=True)
    bounces = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField()
    last_bounced_at = models.DateTimeField()

    class Meta:
        ordering = ["address"]
        verbose_name_plural = "suppressed addresses"

    def __str__(self) -> str:
        return self.address
