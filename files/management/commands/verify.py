from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from files.maintenance import human_size, verify_files
from files.metadata import parse_file_id
from files.models import File
from labdropbox.api.errors import FileNotFound, StorageRejected, StorageUnavailable

PROGRESS_EVERY_SECONDS = 5.0


class Command(BaseCommand):
    help = (
        "Re-read stored chunks and check their sizes and SHA-256s. Prints a line per problem and "
        "a summary; exits 1 if anything is wrong."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file_ids", nargs="*", metavar="FILE_ID", help="files to check")
        parser.add_argument("--all", action="store_true", help="check every stored file")

    def handle(self, *args: Any, file_ids: list[str], all: bool, **options: Any) -> None:
        if bool(file_ids) == all:
            raise CommandError("give one or more FILE_IDs, or --all")
        try:
            ids = [parse_file_id(raw) for raw in file_ids]
        except FileNotFound as exc:
            raise CommandError(f"not a file id: {exc.file_id}") from exc
        if all:
            ids = list(File.objects.order_by("created_at").values_list("id", flat=True))
        bad_files = problems = checked_bytes = 0
        last_report = time.monotonic()
        try:
            for position, (meta, found) in enumerate(verify_files(ids), start=1):
                checked_bytes += meta.size
                for problem in found:
                    self.stdout.write(self.style.ERROR(f"{meta.id} {meta.name}: {problem}"))
                bad_files += bool(found)
                problems += len(found)
                if time.monotonic() - last_report > PROGRESS_EVERY_SECONDS:
                    last_report = time.monotonic()
                    self.stderr.write(
                        f"checked {position}/{len(ids)} files ({human_size(checked_bytes)})"
                    )
        except FileNotFound as exc:
            raise CommandError(f"no file has id {exc.file_id}") from exc
        except (StorageUnavailable, StorageRejected) as exc:
            raise CommandError(f"object storage failed: {exc}") from exc
        summary = (
            f"checked {len(ids)} files ({human_size(checked_bytes)}): "
            f"{bad_files} with problems, {problems} problems"
        )
        if problems:
            self.stdout.write(self.style.ERROR(summary))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(summary))
