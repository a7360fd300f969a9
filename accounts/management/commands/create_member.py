"""manage.py create_member USERNAME [--quota-mb N]: a member who signs in to the web app (and
WebDAV, with a token), with the password read from standard input — typed at a prompt, or piped
(`printf '%s\n' "$PASSWORD" | manage.py create_member ada`), never on the command line."""

from __future__ import annotations

import getpass
import sys

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import Quota


class Command(BaseCommand):
    help = "Create a member with a password (read from standard input) and, optionally, a quota."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--quota-mb",
            type=int,
            default=None,
            help="their quota in MiB (default: DEFAULT_QUOTA_MB)",
        )

    def handle(self, *args: object, username: str, quota_mb: int | None, **options: object) -> None:
        if quota_mb is not None and not 0 <= quota_mb <= 2**40:
            raise CommandError("--quota-mb must be from 0 to 2**40")
        users = get_user_model().objects
        if users.filter(**{users.model.USERNAME_FIELD: username}).exists():
            raise CommandError(f"there is a user {username!r} already")
        password = read_password()
        user = users.model(**{users.model.USERNAME_FIELD: username})
        try:
            password_validation.validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        with transaction.atomic():
            user = users.create_user(username, password=password)
            if quota_mb is not None:
                Quota.objects.create(user=user, limit_bytes=quota_mb * 1024 * 1024)
        self.stdout.write(f"created {username}: sign in at /")


def read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise CommandError("the passwords differ")
        return password
    return sys.stdin.readline().rstrip("\n")
