"""API tokens in the admin: made here or with `manage.py create_token`, revoked here. (Users'
quotas and what each uses are on the user's page: files/admin/users.py.)"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import ApiToken
from accounts.tokens import forget_tokens, new_token_text


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "created_at", "last_used_at", "expires_at", "state"]
    list_filter = [("user", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    fields = ["user", "name", "expires_at", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        # A token's owner and name are what it was made for: a new token, not an edit.
        return self.readonly_fields + (["user", "name"] if obj is not None else [])

    def save_model(self, request: HttpRequest, obj: ApiToken, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token = new_token_text(obj)
        super().save_model(request, obj, form, change)
        self.message_user(
            request,
            f"The new token is {token} — copy it now: it is stored only as a hash and cannot "
            "be shown again.",
            messages.WARNING,
        )

    @admin.display(description="state")
    def state(self, token: ApiToken) -> str:
        if token.revoked_at is not None:
            return "revoked"
        return "live" if token.is_live() else "expired"

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_apitoken")

    @admin.action(description="Revoke (the token stops working at once)", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        tokens = list(queryset.filter(revoked_at=None))
        queryset.filter(pk__in=[token.pk for token in tokens]).update(revoked_at=timezone.now())
        forget_tokens(tokens)  # update() sends no signals
        self.message_user(request, f"{len(tokens)} token(s) revoked", messages.SUCCESS)
