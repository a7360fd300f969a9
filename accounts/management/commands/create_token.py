"""manage.py create_token USERNAME [--name NAME] [--expires-days N]: a new API token for the
user, printed once (only its hash is stored)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.tokens import issue_token


class Command(BaseCommand):
    help = "Create an API token for a user and print it (once: only its hash is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what the token is for")
        parser.add_argument(
            "--expires-days", type=float, default=None, help="days until it expires (default: none)"
        )
        parser.add_argument(
            "--create-user",
            action="store_true",
            help="create the user first if there is none (without a password: API use only)",
        )

    def handle(
        self,
        *args: object,
        username: str,
        name: str,
        expires_days: float | None,
        create_user: bool,
        **options: object,
    ) -> None:
        if expires_days is not None and not 0 < expires_days <= 36500:
            raise CommandError("--expires-days must be more than 0 and at most 36500")
        users = get_user_model().objects
        user = users.filter(**{users.model.USERNAME_FIELD: username}).first()
        if user is None and create_user:
            user = users.create_user(username)
        if user is None:
            raise CommandError(f"no user {username!r}: create it, or pass --create-user")
        self.stdout.write(issue_token(user.pk, name, expires_days))
