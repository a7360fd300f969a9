"""Users with API tokens for tests and benchmarks (a request target that carries a token is
testing.uploads.WithToken)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from accounts.models import Quota
from accounts.tokens import issue_token


def make_user(
    username: str, staff: bool = False, quota_bytes: int | None = None
) -> tuple[Any, str]:
    """A new user (staff or not, with a quota or the default) and a token of theirs."""
    user = get_user_model().objects.create_user(username, is_staff=staff)
    if quota_bytes is not None:
        Quota.objects.create(user=user, limit_bytes=quota_bytes)
    return user, issue_token(user.pk, name="tests")
