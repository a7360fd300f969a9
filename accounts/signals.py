"""A token's cached entry goes as soon as the token, or its user, changes."""

from __future__ import annotations

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import ApiToken
from accounts.tokens import forget_tokens


@receiver([post_save, post_delete], sender=ApiToken)
def token_changed(sender: type, instance: ApiToken, **kwargs: object) -> None:
    if not kwargs.get("created"):  # a new token has no cached entry to replace
        forget_tokens([instance])


@receiver([post_save, post_delete], sender=settings.AUTH_USER_MODEL)
def user_changed(sender: type, instance: object, **kwargs: object) -> None:
    """Deactivated, made staff or not, renamed: the user's tokens are read again."""
    user_id = getattr(instance, "pk", None)
    if user_id is not None:
        forget_tokens(list(ApiToken.objects.filter(user_id=user_id)))
