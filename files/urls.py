from django.urls import path

from files import views
from files.uploads import views as tus

urlpatterns = [
    path("write", views.write, name="write"),
    path("read/<str:file_id>", views.read, name="read"),
    path("files", views.files_list, name="files"),
    path("files/<str:file_id>", views.file_detail, name="file"),
    path("files/<str:file_id>/links", views.links, name="links"),
    path("files/<str:file_id>/links/<str:link_id>", views.link_detail, name="link"),
    path("s/<str:token>", views.shared, name="shared"),
    path("me", views.me, name="me"),
    path("uploads/", tus.uploads, name="uploads"),
    path("uploads/<str:upload_id>", tus.upload, name="upload"),
    path("health", views.health_live, name="health"),
    path("health/ready", views.health_ready, name="ready"),
    path("openapi.json", views.openapi, name="openapi"),
]
