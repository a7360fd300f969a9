from django.apps import AppConfig


class WebConfig(AppConfig):
    """The members' web app: sign in, browse, upload, move, share and restore in a browser."""

    name = "web"
    verbose_name = "Web app"
