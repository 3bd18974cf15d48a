"""The Django admin, the operators' UI: one module per area, registered on import."""

from itsm.admin import catalog, jobs, sla, tickets, users

__all__ = ["catalog", "jobs", "sla", "tickets", "users"]
