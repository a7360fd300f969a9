from django.contrib import admin
from django.urls import include, path

from dav.views import dav
from metrics.views import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
    # WebDAV: the root with and without its slash (clients send both), then every path below.
    path("dav", dav, name="dav-root"),
    path("dav/", dav, name="dav"),
    path("dav/<path:path>", dav, name="dav-path"),
    path("", include("files.urls")),
    # The members' web app: / (their tree) and the pages under /app/.
    path("", include("web.urls")),
]

# Errors Django answers itself are JSON too.
handler400 = "labdropbox.api.views.bad_request"
handler403 = "labdropbox.api.views.permission_denied"
handler404 = "labdropbox.api.views.not_found"
handler500 = "labdropbox.api.views.server_error"
