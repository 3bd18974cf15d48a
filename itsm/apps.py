from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ItsmConfig(AppConfig):
    name = "itsm"
    verbose_name = "IT service management"

    def ready(self) -> None:
        # Registers the system checks, Celery's signals and the receivers that take tokens back (itsm.sign_in), and
        # the models the audit trail records (itsm.audit).
        from itsm import audit, beat, celery_metrics, checks, sign_in  # noqa: F401

        audit.register_models()


class DeskAdminConfig(admin_apps.AdminConfig):
    """Django's admin with the platform's site (itsm/admin_site.py): the index opens with the agent's desk. Named in
    INSTALLED_APPS in place of django.contrib.admin; `default = False` keeps ItsmConfig the config of "itsm"."""

    default = False
    default_site = "itsm.admin_site.DeskAdminSite"
