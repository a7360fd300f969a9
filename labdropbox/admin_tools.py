"""Admin behaviour shared by the apps' admins."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect


class UuidSearchMixin:
    """Admin search that also matches a pasted UUID exactly (the name search stays as it is)."""

    uuid_search_field = "id"
    model: type[Model]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        queryset, may_have_duplicates = super().get_search_results(  # type: ignore[misc]
            request, queryset, search_term
        )
        try:
            value = uuid.UUID(search_term.strip())
        except ValueError:
            return queryset, may_have_duplicates
        matches = self.model._default_manager.filter(**{self.uuid_search_field: value})
        return queryset | matches, may_have_duplicates


class CheckedActionsMixin:
    """Admin actions whose selected ids are checked before the action runs: a malformed id (a
    hand-made POST) is an error message on the list, not a server error."""

    model: type[Model]

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        key = self.model._meta.pk
        for raw in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                key.to_python(raw)
            except ValidationError:
                self.message_user(  # type: ignore[attr-defined]
                    request, f"{raw[:60]!r} is not a valid id: nothing was done.", messages.ERROR
                )
                return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset, *args, **kwargs)  # type: ignore[misc]
