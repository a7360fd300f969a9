from django.urls import path

from files import views

urlpatterns = [
    path("write", views.write, name="write"),
    path("read/<str:file_id>", views.read, name="read"),
    path("health", views.health, name="health"),
]
