from django.apps import AppConfig


class ItsmConfig(AppConfig):
    name = "itsm"
    verbose_name = "IT service management"

    def ready(self) -> None:
        from itsm import celery_metrics, checks  # noqa: F401  (registers the system checks and Celery's signals)
