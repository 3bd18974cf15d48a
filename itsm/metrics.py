"""Every Prometheus metric of the platform, defined once.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn with several workers, Celery), prometheus_client writes each
process's samples to that directory and `/metrics` aggregates them.
"""

from prometheus_client import Counter, Gauge, Histogram

SLA_STATE_CHANGES = Counter(
    "itsm_sla_state_changes_total",
    "Tickets that became at risk or breached an SLA target.",
    ["state", "priority"],
)
TICKETS_CREATED = Counter("itsm_tickets_created_total", "Tickets created.", ["priority"])
TICKET_TRANSITIONS = Counter("itsm_ticket_transitions_total", "Ticket status changes.", ["to"])
LOGIN_FAILURES = Counter(
    "itsm_login_failures_total", "Failed logins (token endpoint, admin and portal sign-in).", ["reason"]
)
JOB_RUNS = Counter("itsm_job_runs_total", "Scheduled job runs by outcome.", ["job", "outcome"])
JOB_DURATION = Histogram(
    "itsm_job_duration_seconds",
    "Duration of scheduled job runs.",
    ["job"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)

# --- Backups (itsm.services.backups). Timestamps are Unix seconds; gauges survive several processes by "max" or
# "mostrecent" in multiprocess mode.
BACKUP_LAST_SUCCESS = Gauge(
    "itsm_backup_last_success_timestamp_seconds",
    "When the newest successful (verified) backup of this kind and tier finished.",
    ["kind", "tier"],
    multiprocess_mode="max",
)
BACKUP_LAST_VERIFIED = Gauge(
    "itsm_backup_last_verified_timestamp_seconds",
    "When a backup of this kind and tier last passed verification (a restore matched its manifest).",
    ["kind", "tier"],
    multiprocess_mode="max",
)
BACKUP_SIZE = Gauge(
    "itsm_backup_size_bytes",
    "Size of the newest backup of this kind and tier.",
    ["kind", "tier"],
    multiprocess_mode="mostrecent",
)
BACKUP_DURATION = Histogram(
    "itsm_backup_duration_seconds",
    "Time from the start of a backup to its verified, stored end.",
    ["kind", "tier"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
BACKUP_FAILURES = Counter(
    "itsm_backup_failures_total",
    "Backups that failed, by the step that failed (dump, verify, upload, internal).",
    ["kind", "tier", "stage"],
)
BACKUP_VERIFICATIONS = Counter(
    "itsm_backup_verifications_total",
    "Verifications of backups by where the archive was read from and outcome (passed, failed).",
    ["kind", "source", "outcome"],
)
BACKUP_DELETIONS = Counter("itsm_backup_deletions_total", "Backup copies deleted by retention.", ["kind", "location"])
BACKUP_NEWEST_VERIFIED_AGE = Gauge(
    "itsm_backup_newest_verified_age_seconds",
    "Age of the newest verified backup of this kind and tier, as of the last backup age check.",
    ["kind", "tier"],
    multiprocess_mode="mostrecent",
)
BACKUP_AGE_CHECK_FAILURES = Counter(
    "itsm_backup_age_check_failures_total",
    "Backup age checks that found a kind and tier without a recent enough verified backup.",
    ["kind", "tier"],
)
RESTORE_DRILL_RTO = Gauge(
    "itsm_backup_restore_drill_rto_seconds",
    "Restore drill: seconds to fetch, restore and check the newest verified backup.",
    ["source"],
    multiprocess_mode="mostrecent",
)
RESTORE_DRILL_RPO = Gauge(
    "itsm_backup_restore_drill_rpo_seconds",
    "Restore drill: age of the restored data (drill start minus the backup's snapshot time).",
    ["source"],
    multiprocess_mode="mostrecent",
)
RESTORE_DRILL_LAST_SUCCESS = Gauge(
    "itsm_backup_restore_drill_last_success_timestamp_seconds",
    "When the last successful restore drill finished.",
    ["source"],
    multiprocess_mode="max",
)

# --- Incidents -----------------------------------------------------------------------------------------------
INCIDENTS_DECLARED = Counter("itsm_incidents_declared_total", "Incidents declared.", ["severity", "source"])
# Set by the escalation scan every 30 s from the database; the most recent value wins across processes.
INCIDENTS_OPEN = Gauge(
    "itsm_incidents_open", "Incidents not yet resolved, by severity.", ["severity"], multiprocess_mode="mostrecent"
)
_RESPONSE_BUCKETS = (60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800)
INCIDENT_TIME_TO_ACKNOWLEDGE = Histogram(
    "itsm_incident_time_to_acknowledge_seconds",
    "From detection to the first response (acknowledged or any later state).",
    ["severity"],
    buckets=_RESPONSE_BUCKETS,
)
INCIDENT_TIME_TO_RESOLVE = Histogram(
    "itsm_incident_time_to_resolve_seconds", "From detection to resolution.", ["severity"], buckets=_RESPONSE_BUCKETS
)
PAGES_SENT = Counter("itsm_pages_total", "People paged or notified for incidents.", ["severity", "kind"])
ALERTS_RECEIVED = Counter("itsm_alerts_received_total", "Alerts received from Alertmanager.", ["status"])

# --- Notifications (itsm.services.notifications) ------------------------------------------------------------------
NOTIFICATIONS_DELIVERED = Counter(
    "itsm_notifications_delivered_total", "Notifications delivered, by channel.", ["channel"]
)
NOTIFICATIONS_FAILED = Counter(
    "itsm_notifications_failed_total",
    "Notifications given up on (a permanent error or the last allowed attempt), by channel.",
    ["channel"],
)
NOTIFICATION_DELIVERY_DURATION = Histogram(
    "itsm_notification_delivery_duration_seconds",
    "Duration of one delivery attempt, successful or not, by channel.",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# --- Service desk state, refreshed every 30 s by Beat (itsm.services.monitoring); the most recent value wins.
TICKETS_OPEN = Gauge(
    "itsm_tickets_open",
    "Tickets not resolved or closed, by priority and status.",
    ["priority", "status"],
    multiprocess_mode="mostrecent",
)
TICKETS_SLA_BREACHED_OPEN = Gauge(
    "itsm_tickets_sla_breached_open",
    "Open tickets whose SLA is breached, by priority.",
    ["priority"],
    multiprocess_mode="mostrecent",
)
CELERY_QUEUE_LENGTH = Gauge(
    "itsm_celery_queue_length", "Messages waiting in a Celery queue.", ["queue"], multiprocess_mode="mostrecent"
)
MIGRATIONS_UNAPPLIED = Gauge(
    "itsm_migrations_unapplied",
    "Migrations of the running code not applied to the database.",
    multiprocess_mode="mostrecent",
)
# Set by each successful run, and for every job from the database by the dead-man switch every minute, so the
# series survive restarts; a timestamp only grows, so "max" over the processes' files is the newest success.
JOB_LAST_SUCCESS = Gauge(
    "itsm_job_last_success_timestamp_seconds",
    "When a scheduled job last succeeded (or found its slot already done).",
    ["job"],
    multiprocess_mode="max",
)
# "mostrecent": a schedule changed to run more often must show its new, shorter period.
JOB_PERIOD = Gauge("itsm_job_period_seconds", "The period of a scheduled job.", ["job"], multiprocess_mode="mostrecent")

# Set from the flag whenever /health/ or /metrics is asked, and when the mode is turned on or off, so the value is
# right whichever process changed it; the most recent value wins across processes.
READ_ONLY_MODE = Gauge(
    "itsm_read_only_mode",
    "1 while read-only mode is on (the API answers writes with 503, e.g. during a restore), else 0.",
    multiprocess_mode="mostrecent",
)

# --- Celery tasks (itsm.celery_metrics, connected to Celery's signals) ---------------------------------------------
CELERY_TASKS = Counter("itsm_celery_tasks_total", "Celery tasks finished, by task and outcome.", ["task", "outcome"])
CELERY_TASK_DURATION = Histogram(
    "itsm_celery_task_duration_seconds",
    "Run time of Celery tasks.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)

# --- Alert rules evaluated by Celery -----------------------------------------------------------------------------
ALERT_RULE_ERRORS = Counter("itsm_alert_rule_errors_total", "Alert rule evaluations that failed.", ["rule"])
PROMETHEUS_REACHABLE = Gauge(
    "itsm_prometheus_reachable", "1 when the alert rules could query PROMETHEUS_URL.", multiprocess_mode="mostrecent"
)

# --- Mail in (itsm.services.mail, itsm.services.mail_polling) --------------------------------------------------
MAIL_MESSAGES = Counter(
    "itsm_mail_messages_total",
    "Messages read from the mailboxes, by what became of them (ticket_created, reply_threaded, ignored, refused, "
    "failed).",
    ["outcome"],
)
MAIL_POLL_DURATION = Histogram(
    "itsm_mail_poll_duration_seconds",
    "Duration of one poll of a mailbox.",
    ["mailbox"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
MAIL_POLL_FAILURES = Counter(
    "itsm_mail_poll_failures_total", "Polls of a mailbox that could not reach or read it.", ["mailbox"]
)
MAIL_LAST_POLL_SUCCESS = Gauge(
    "itsm_mail_last_poll_success_timestamp_seconds",
    "When the mailbox was last read without an error (the MailboxNotPolled alert compares it with now).",
    ["mailbox"],
    multiprocess_mode="max",
)

# --- Logs (itsm.log_metrics.ErrorCountingHandler, installed on the root logger by LOGGING) ---------------------------
LOG_ERRORS = Counter(
    "itsm_log_errors_total",
    "Log records at ERROR or above, by the kind of process that wrote them (api, worker, beat).",
    ["process"],
)

# --- Celery Beat (itsm.beat): its liveness, seen from outside its own schedule (the rule BeatDown).
BEAT_LAST_TICK = Gauge(
    "itsm_beat_last_tick_timestamp_seconds",
    "When Celery Beat's scheduler last completed a tick (Unix seconds); it stops advancing when Beat dies or hangs.",
    multiprocess_mode="max",
)

# --- point-in-time recovery (pgBackRest) ---------------------------------------------------------------------
WAL_ARCHIVE_AGE = Gauge(
    "itsm_wal_archive_age_seconds",
    "Seconds since the archived cluster last archived a WAL segment (pg_stat_archiver), set by refresh_metrics.",
    multiprocess_mode="mostrecent",
)
PITR_BACKUPS = Counter(
    "itsm_pitr_backups_total",
    "pgBackRest backups run by the platform, by type (full, diff) and outcome (succeeded, failed).",
    ["type", "outcome"],
)
PITR_DRILLS = Counter(
    "itsm_pitr_drills_total",
    "Point-in-time recovery drills by outcome (succeeded, failed).",
    ["outcome"],
)
PITR_DRILL_RPO = Gauge(
    "itsm_pitr_drill_rpo_seconds",
    "PITR drill: seconds from the last write until its WAL segment was archived (data at risk).",
    multiprocess_mode="mostrecent",
)
PITR_DRILL_RTO = Gauge(
    "itsm_pitr_drill_rto_seconds",
    "PITR drill: seconds from the start of the restore to a usable, checked cluster.",
    multiprocess_mode="mostrecent",
)
PITR_DRILL_LAST_SUCCESS = Gauge(
    "itsm_pitr_drill_last_success_timestamp_seconds",
    "When the last successful PITR drill finished.",
    multiprocess_mode="max",
)

# The read replica as each API process last probed it (itsm/replica.py). The lag is 0 when the replica has replayed
# everything it received (an idle primary sends nothing), so unlike postgres_exporter's pg_replication_lag_seconds
# it does not grow while nobody writes: the manual's 10 ms target is alerted on this one (ReplicationLagHigh).
REPLICA_UP = Gauge(
    "itsm_replica_up",
    "1 when the read replica answers and lags within ITSM_REPLICA_MAX_LAG_SECONDS, else 0",
    multiprocess_mode="livemin",
)
REPLICA_LAG = Gauge(
    "itsm_replica_lag_seconds",
    "Seconds the read replica is behind the primary (0 when it has replayed all it received)",
    multiprocess_mode="livemax",
)
