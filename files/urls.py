from django.urls import path

from files.uploads import views as tus
from files.views import content, files, folders, links, service, trash

urlpatterns = [
    path("write", content.write, name="write"),
    path("read/<str:file_id>", content.read, name="read"),
    path("s/<str:token>", content.shared, name="shared"),
    path("files", files.files_list, name="files"),
    path("files/<str:file_id>", files.file_detail, name="file"),
    path("files/<str:file_id>/move", files.file_move, name="file-move"),
    path("files/<str:file_id>/copy", files.file_copy, name="file-copy"),
    path("files/<str:file_id>/versions", files.file_versions, name="file-versions"),
    path(
        "files/<str:file_id>/versions/<str:version_id>/restore",
        files.version_restore,
        name="version-restore",
    ),
    path("files/<str:file_id>/links", links.links, name="links"),
    path("files/<str:file_id>/links/<str:link_id>", links.link_detail, name="link"),
    path("folders", folders.folders, name="folders"),
    path("folders/<str:folder_id>", folders.folder_detail, name="folder"),
    path("folders/<str:folder_id>/move", folders.folder_move, name="folder-move"),
    path("trash", trash.trash_list, name="trash"),
    path("trash/<str:trash_id>/restore", trash.trash_restore, name="trash-restore"),
    path("trash/<str:trash_id>", trash.trash_purge, name="trash-item"),
    path("me", service.me, name="me"),
    path("uploads/", tus.uploads, name="uploads"),
    path("uploads/<str:upload_id>", tus.upload, name="upload"),
    path("health", service.health_live, name="health"),
    path("health/ready", service.health_ready, name="ready"),
    path("openapi.json", service.openapi, name="openapi"),
]
