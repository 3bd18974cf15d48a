"""The Django admin, the operators' UI: one module per area, registered on import."""

from itsm.admin import (
    alert_rules,
    alerts,
    attachments,
    backups,
    catalog,
    incidents,
    jobs,
    mail,
    maintenance,
    notifications,
    oncall,
    pitr,
    satisfaction,
    sla,
    tickets,
    users,
)

__all__ = [
    "alert_rules",
    "alerts",
    "attachments",
    "backups",
    "catalog",
    "incidents",
    "jobs",
    "mail",
    "maintenance",
    "notifications",
    "oncall",
    "pitr",
    "satisfaction",
    "sla",
    "tickets",
    "users",
]
