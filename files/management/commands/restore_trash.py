"""manage.py restore_trash USERNAME: put a user's trash back where it was — all of it, or what
was trashed since a date or from under a path. For the morning after someone emptied the wrong
folder."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from files.models import TrashEntry
from files.tree.roots import root_of
from files.tree.trash import restore
from labdropbox.api.callers import SERVICE
from labdropbox.api.errors import NameTaken, TrashNotFound


class Command(BaseCommand):
    help = (
        "Restore a user's trashed files and folders to where they were (the folders above them "
        "made again if they are gone). Where something else has taken a name meanwhile, the "
        "item stays in the trash and is reported; nothing is overwritten."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="whose trash; --shared for files of no one")
        parser.add_argument(
            "--since", help="only what was trashed on or after this date (YYYY-MM-DD)"
        )
        parser.add_argument("--path", help="only what was trashed from this folder or below it")
        parser.add_argument("--dry-run", action="store_true", help="list, restore nothing")

    def handle(
        self,
        *args: Any,
        username: str,
        since: str | None,
        path: str | None,
        dry_run: bool,
        **options: Any,
    ) -> None:
        items = TrashEntry.objects.filter(root=root_of(self.user_id(username)))
        if since is not None:
            items = items.filter(trashed_at__gte=parse_day(since))
        if path is not None and path.strip("/"):
            folder = "/" + path.strip("/")
            items = items.filter(
                Q(original_path=folder) | Q(original_path__startswith=folder + "/")
            )
        # The oldest first: a folder trashed before one of its files left it comes back first.
        ordered = list(items.order_by("trashed_at", "id"))
        restored = kept = 0
        for item in ordered:
            if dry_run:
                self.stdout.write(f"would restore {item.original_path}")
                continue
            try:
                restore(str(item.id), SERVICE)
            except NameTaken as taken:
                kept += 1
                self.stdout.write(f"kept in the trash: {item.original_path}: {taken.detail}")
            except TrashNotFound:
                continue  # restored or purged meanwhile
            else:
                restored += 1
                self.stdout.write(f"restored {item.original_path}")
        if not dry_run:
            self.stdout.write(f"restored {restored}, kept {kept} whose place is taken")

    def user_id(self, username: str) -> int:
        users = get_user_model().objects
        user = users.filter(**{users.model.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        return int(user.pk)


def parse_day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise CommandError(f"--since {text!r} is not a date like 2026-12-01") from None
