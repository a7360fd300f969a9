from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "traces"
    verbose_name = "LabDropbox traces"

    def ready(self) -> None:
        from labdropbox.tracing import add_default_processor
        from traces.recorder import configured_recorder

        add_default_processor(configured_recorder)
