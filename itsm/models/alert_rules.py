from django.db import models


class AlertRule(models.Model):
    """A condition evaluated by Celery every 30 s: a built-in check or a PromQL expression against a threshold.

    It goes pending when the condition first holds, firing once it has held for `for_seconds`, and back to
    inactive (resolved) when it stops; firing and resolved alerts go through the Alertmanager intake.
    """

    # No database probe: the evaluator reads its rules from the database, so it could never report it down.
    # Prometheus' DatabaseDown (postgres_exporter's pg_up) does, from outside.
    class Probe(models.TextChoices):
        CACHE_UP = "cache_up", "Cache reachable (1 or 0)"
        BROKER_UP = "broker_up", "Broker reachable (1 or 0)"
        BACKUP_AGE = "backup_age_seconds", "Age of the newest verified database backup, seconds"
        MISSED_JOBS = "missed_jobs", "Scheduled jobs that missed their slot"
        SLA_BREACHES = "sla_breaches", "Open tickets that breached their SLA"
        PROMQL = "promql", "PromQL expression (PROMETHEUS_URL)"

    class Comparison(models.TextChoices):
        GT = "gt", ">"
        GE = "ge", "≥"
        LT = "lt", "<"
        LE = "le", "≤"
        EQ = "eq", "="
        NE = "ne", "≠"

    class Severity(models.TextChoices):
        CRITICAL = "critical"
        WARNING = "warning"
        INFO = "info"

    class State(models.TextChoices):
        INACTIVE = "inactive"
        PENDING = "pending"
        FIRING = "firing"

    name = models.CharField(max_length=100, unique=True)
    probe = models.CharField(max_length=30, choices=Probe.choices)
    expression = models.TextField(
        blank=True, help_text="PromQL, for the PromQL check; the first sample's value counts."
    )
    comparison = models.CharField(max_length=2, choices=Comparison.choices, default=Comparison.GT)
    threshold = models.FloatField(default=0)
    for_seconds = models.PositiveIntegerField(default=0, help_text="How long the condition must hold before firing.")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    service = models.ForeignKey("itsm.Service", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    summary = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.INACTIVE)
    pending_since = models.DateTimeField(null=True, blank=True)
    firing_since = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(probe="promql") | ~models.Q(expression=""), name="alert_rule_promql_has_expression"
            ),
        ]

    def __str__(self) -> str:
        return self.name
