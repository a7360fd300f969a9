from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from files.storage import get_store
from labdropbox.api.errors import StorageRejected, StorageUnavailable


class Command(BaseCommand):
    help = "Create the chunk bucket (or, embedded, the chunk folder) if it does not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        store = get_store()
        try:
            created = store.ensure_bucket()
        except (StorageUnavailable, StorageRejected) as exc:
            raise CommandError(f"could not reach {store.description}: {exc}") from exc
        verb = "created" if created else "already exists:"
        self.stdout.write(self.style.SUCCESS(f"{verb} {store.description}"))
