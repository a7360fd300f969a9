from django.apps import AppConfig


class FilesConfig(AppConfig):
    name = "files"
    verbose_name = "LabDropbox files"

    def ready(self) -> None:
        from files import checks  # noqa: F401  (registers the system checks)
        from files.collectors import KeptForUndo, UnfinishedUploads
        from metrics.registry import SCRAPE_COLLECTORS

        SCRAPE_COLLECTORS.extend([UnfinishedUploads(), KeptForUndo()])
