from django.apps import AppConfig


class DavConfig(AppConfig):
    name = "dav"
    verbose_name = "LabDropbox WebDAV"
    default_auto_field = "django.db.models.BigAutoField"
