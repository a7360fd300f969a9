from django.contrib import admin
from django.urls import include, path

from metrics.views import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
    path("", include("files.urls")),
]

# Errors Django answers itself are JSON too.
handler400 = "labdropbox.api.views.bad_request"
handler403 = "labdropbox.api.views.permission_denied"
handler404 = "labdropbox.api.views.not_found"
handler500 = "labdropbox.api.views.server_error"
