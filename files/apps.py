from django.apps import AppConfig


class FilesConfig(AppConfig):
    name = "files"
    verbose_name = "LabDropbox files"

    def ready(self) -> None:
        from files import checks  # noqa: F401  (registers the system checks)
