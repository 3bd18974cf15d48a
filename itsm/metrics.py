"""Every Prometheus metric of the platform, defined once.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn with several workers, Celery), prometheus_client writes each
process's samples to that directory and `/metrics` aggregates them.
"""

from prometheus_client import Counter, Histogram

SLA_STATE_CHANGES = Counter(
    "itsm_sla_state_changes_total",
    "Tickets that became at risk or breached an SLA target.",
    ["state", "priority"],
)
TICKETS_CREATED = Counter("itsm_tickets_created_total", "Tickets created.", ["priority"])
TICKET_TRANSITIONS = Counter("itsm_ticket_transitions_total", "Ticket status changes.", ["to"])
LOGIN_FAILURES = Counter("itsm_login_failures_total", "Failed logins at the token endpoint.", ["reason"])
JOB_RUNS = Counter("itsm_job_runs_total", "Scheduled job runs by outcome.", ["job", "outcome"])
JOB_DURATION = Histogram(
    "itsm_job_duration_seconds",
    "Duration of scheduled job runs.",
    ["job"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
