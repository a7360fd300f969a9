from django.http import HttpRequest, HttpResponse
from django.urls import include, path

KIB = b"x" * 1024


def floor(request: HttpRequest) -> HttpResponse:
    """1 KiB from memory: what Django, the middleware and gunicorn cost on their own."""
    return HttpResponse(KIB, content_type="application/octet-stream")


urlpatterns = [path("floor", floor), path("", include("labdropbox.urls"))]
