"""manage.py usage [USERNAME ...]: what each user stores against their quota, split as /me
splits it, with their file, trash and unfinished-upload counts."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from files.maintenance import human_size
from files.models import Entry, TrashEntry, Upload
from files.quotas import stored_split, usage_of

COLUMNS = ("user", "quota", "used", "current", "versions", "trash", "reserved", "files", "trashed")


class Command(BaseCommand):
    help = (
        "Report storage per user: used (stored + held by uploads in progress) against the quota, "
        "what is stored split into current versions, earlier versions and the trash (each "
        "content once), and how many files, trash entries and unfinished uploads they have."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("usernames", nargs="*", help="these users only (default: everyone)")
        parser.add_argument("--bytes", action="store_true", help="exact byte counts")

    def handle(self, *args: Any, usernames: list[str], bytes: bool, **options: Any) -> None:
        users = get_user_model().objects.order_by("pk")
        if usernames:
            field = get_user_model().USERNAME_FIELD
            users = users.filter(**{f"{field}__in": usernames})
            missing = set(usernames) - {user.get_username() for user in users}
            if missing:
                raise CommandError(f"no such users: {', '.join(sorted(missing))}")
        size = str if bytes else human_size
        rows = [COLUMNS]
        for user in users:
            usage, split = usage_of(user.pk), stored_split(user.pk)
            files = Entry.objects.filter(owner=user, kind=Entry.Kind.FILE, trash=None).count()
            rows.append(
                (
                    user.get_username(),
                    "unlimited" if usage.limit is None else size(usage.limit),
                    size(usage.used),
                    size(split.current),
                    size(split.versions),
                    size(split.trash),
                    size(usage.reserved),
                    str(files),
                    str(TrashEntry.objects.filter(owner=user).count()),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        for row in rows:
            self.stdout.write(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
        unfinished = Upload.objects.filter(completed_at=None).count()
        self.stdout.write(f"{len(rows) - 1} users; {unfinished} unfinished uploads in all")
