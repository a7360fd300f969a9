from django.apps import AppConfig


class FilesConfig(AppConfig):
    name = "files"
    verbose_name = "LabDropbox files"

    def ready(self) -> None:
        from django.core.signals import request_finished

        from files import checks  # noqa: F401  (registers the system checks)
        from files.collectors import KeptForUndo, UnfinishedUploads
        from labdropbox.db_connections import keep_or_close
        from metrics.registry import SCRAPE_COLLECTORS

        request_finished.connect(keep_or_close, dispatch_uid="labdropbox.db_connections")
        SCRAPE_COLLECTORS.extend([UnfinishedUploads(), KeptForUndo()])
