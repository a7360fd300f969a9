from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from files.maintenance import human_size
from files.maintenance.verify import (
    stored_blob_count,
    verify_everything,
    verify_versions,
    versions_to_check,
)
from files.metadata import parse_file_id
from labdropbox.api.errors import FileNotFound, StorageRejected, StorageUnavailable

PROGRESS_EVERY_SECONDS = 5.0


class Command(BaseCommand):
    help = (
        "Re-read stored chunks and check their sizes and SHA-256s: of every version of the files "
        "named, or with --all of everything stored (current and earlier versions, the trash). "
        "Prints a line per problem and a summary; exits 1 if anything is wrong."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file_ids", nargs="*", metavar="FILE_ID", help="files to check")
        parser.add_argument("--all", action="store_true", help="check everything stored")

    def handle(self, *args: Any, file_ids: list[str], all: bool, **options: Any) -> None:
        if bool(file_ids) == all:
            raise CommandError("give one or more FILE_IDs, or --all")
        try:
            ids = [parse_file_id(raw) for raw in file_ids]
        except FileNotFound as exc:
            raise CommandError(f"not a file id: {exc.file_id}") from exc
        try:
            versions = [] if all else versions_to_check(ids)
        except FileNotFound as exc:
            raise CommandError(f"no file has id {exc.file_id}") from exc
        checks = verify_everything() if all else verify_versions(versions)
        total = stored_blob_count() if all else len(versions)
        what = f"{total} stored contents" if all else f"{len(ids)} files"
        bad = problems = checked_bytes = 0
        last_report = time.monotonic()
        try:
            for position, checked in enumerate(checks, start=1):
                checked_bytes += checked.size
                for problem in checked.problems:
                    self.stdout.write(self.style.ERROR(f"{checked.label}: {problem}"))
                bad += bool(checked.problems)
                problems += len(checked.problems)
                if time.monotonic() - last_report > PROGRESS_EVERY_SECONDS:
                    last_report = time.monotonic()
                    progress = f"checked {position}/{total} contents ({human_size(checked_bytes)})"
                    self.stderr.write(progress)
        except (StorageUnavailable, StorageRejected) as exc:
            raise CommandError(f"object storage failed: {exc}") from exc
        summary = (
            f"checked {what} ({human_size(checked_bytes)}): "
            f"{bad} with problems, {problems} problems"
        )
        if problems:
            self.stdout.write(self.style.ERROR(summary))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(summary))
