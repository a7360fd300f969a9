"""Admin search shared by the apps' admins."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpRequest


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
