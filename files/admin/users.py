"""Users in the admin with their storage: their quota (edited inline) and what each uses."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.template.defaultfilters import filesizeformat

from accounts.models import Quota
from files.quotas import usage_of


class QuotaInline(admin.StackedInline):
    model = Quota
    can_delete = False
    verbose_name_plural = "storage quota"


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserWithStorageAdmin(UserAdmin):
    inlines = [QuotaInline]  # Django's UserAdmin has none of its own
    list_display = [
        "username",
        "email",
        "first_name",
        "last_name",
        "is_staff",
        "storage_used",
        "storage_quota",
    ]

    @admin.display(description="storage used")
    def storage_used(self, user: object) -> str:
        return filesizeformat(usage_of(user.pk).used)  # type: ignore[attr-defined]

    @admin.display(description="quota")
    def storage_quota(self, user: object) -> str:
        limit = usage_of(user.pk).limit  # type: ignore[attr-defined]
        return "unlimited" if limit is None else filesizeformat(limit)
