from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from files.maintenance import (
    delete_orphan,
    expired_uploads,
    human_size,
    remove_expired_upload,
    remove_lapsed_reservations,
    scan_orphans,
)
from files.storage import ChunkStore, get_store
from labdropbox.api.errors import StorageRejected, StorageUnavailable


class Command(BaseCommand):
    help = (
        "Delete chunk objects that belong to no committed file and have been idle longer than "
        "the grace period: what crashes, killed workers and deletes that could not reach "
        "storage leave behind, resumable uploads past their expiry, and lapsed quota "
        "reservations. Uploads still in flight are never touched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace-minutes",
            type=float,
            default=60.0,
            help="leave uploads alone whose newest chunk is younger than this (default 60)",
        )
        parser.add_argument("--dry-run", action="store_true", help="report, delete nothing")

    def handle(self, *args: Any, grace_minutes: float, dry_run: bool, **options: Any) -> None:
        if grace_minutes < 0:
            raise CommandError("--grace-minutes cannot be negative")
        store = get_store()
        try:
            failed = self.remove_expired_uploads(store, dry_run)
            self.stdout.write(f"scanning {store.description} ...")
            scan = scan_orphans(store, timedelta(minutes=grace_minutes))
            for orphan in scan.orphans:
                self.stdout.write(
                    f"orphan {orphan.file_id}: {len(orphan.objects)} objects, "
                    f"{human_size(orphan.size)}, newest {orphan.newest:%Y-%m-%d %H:%M:%S} UTC"
                )
            objects = sum(len(orphan.objects) for orphan in scan.orphans)
            self.stdout.write(
                f"found {len(scan.orphans)} orphaned uploads ({objects} objects, "
                f"{human_size(sum(o.size for o in scan.orphans))}); left alone: {scan.committed} "
                f"committed files, {scan.young} uploads younger than {grace_minutes:g} minutes"
            )
            if dry_run:
                self.stdout.write("dry run: nothing deleted")
                return
            failed += [key for orphan in scan.orphans for key in delete_orphan(store, orphan)]
        except (StorageUnavailable, StorageRejected) as exc:
            raise CommandError(f"object storage failed: {exc}") from exc
        if failed:
            raise CommandError(f"deleted {objects - len(failed)} objects; {len(failed)} failed")
        self.stdout.write(self.style.SUCCESS(f"deleted {objects} objects"))

    def remove_expired_uploads(self, store: ChunkStore, dry_run: bool) -> list[str]:
        """Resumable uploads past their expiry: reported, then removed with their objects."""
        expired = expired_uploads()
        for upload in expired:
            state = (
                "finished"
                if upload.completed_at
                else f"{upload.offset} of {upload.length or '?'} bytes"
            )
            self.stdout.write(
                f"expired upload {upload.id} ({upload.name}): {state}, "
                f"last activity {upload.updated_at:%Y-%m-%d %H:%M:%S} UTC"
            )
        if dry_run:
            return []
        lapsed = remove_lapsed_reservations()
        if lapsed:
            self.stdout.write(f"removed {lapsed} lapsed quota reservations")
        return [key for upload in expired for key in remove_expired_upload(store, upload)]
