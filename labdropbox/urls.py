from django.contrib import admin
from django.urls import include, path

from metrics.views import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
    path("", include("files.urls")),
]

handler404 = "files.views.not_found"
handler500 = "files.views.server_error"
