from django.urls import path

from web.views import account, browse, items

app_name = "web"

urlpatterns = [
    path("", browse.browse, name="browse"),
    path("app/sign-in", account.sign_in, name="sign-in"),
    path("app/sign-out", account.sign_out, name="sign-out"),
    path("app/password", account.password_change, name="password"),
    path("app/password/changed", account.password_changed, name="password-changed"),
    path("app/files/<str:file_id>", items.file_page, name="file"),
    path("app/folders/<str:folder_id>", items.folder_page, name="folder"),
    path("app/trash", items.trash_page, name="trash"),
]
