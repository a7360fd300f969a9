from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "LabDropbox metrics"

    def ready(self) -> None:
        from django.conf import settings

        from metrics import checks  # noqa: F401  (registers the system checks)
        from metrics.db import watch_queries

        if settings.METRICS_ENABLED:
            watch_queries()
