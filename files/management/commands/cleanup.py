"""manage.py cleanup: what has expired, and chunk objects that nothing needs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from files.maintenance import human_size
from files.maintenance.cleanup import (
    delete_orphan,
    expired_uploads,
    remove_expired_upload,
    remove_lapsed_reservations,
    remove_lapsed_writes,
    scan_orphans,
)
from files.storage import ChunkStore, get_store
from files.tree.trash import expired_trash, purge_item
from files.tree.versions import expire_versions, expired_versions
from labdropbox.api.errors import ServiceError, StorageRejected, StorageUnavailable


class Command(BaseCommand):
    help = (
        "Remove what has expired — trash older than TRASH_RETENTION_DAYS, versions replaced more "
        "than VERSION_RETENTION_DAYS ago, resumable uploads past their expiry, writes whose "
        "worker died, lapsed quota reservations — then the chunk objects no record covers. "
        "An object that a file, a version, the trash, an upload or a write in flight still "
        "needs is never touched, whatever the grace."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace-minutes",
            type=float,
            default=60.0,
            help="leave uncovered objects alone while younger than this (default 60): only "
            "what an earlier release stored before recording it can be such",
        )
        parser.add_argument("--dry-run", action="store_true", help="report, delete nothing")

    def handle(self, *args: Any, grace_minutes: float, dry_run: bool, **options: Any) -> None:
        if grace_minutes < 0:
            raise CommandError("--grace-minutes cannot be negative")
        store = get_store()
        try:
            unpurged = self.apply_retention(dry_run)
            failed = self.remove_expired_uploads(store, dry_run)
            if not dry_run:
                self.report(
                    "removed {} records of writes whose worker died", remove_lapsed_writes()
                )
                self.report("removed {} lapsed quota reservations", remove_lapsed_reservations())
            failed += self.remove_orphans(store, timedelta(minutes=grace_minutes), dry_run)
        except (StorageUnavailable, StorageRejected) as exc:
            raise CommandError(f"object storage failed: {exc}") from exc
        if unpurged:
            raise CommandError(f"{unpurged} trash entries could not be purged (see above)")
        if failed:
            raise CommandError(f"{len(failed)} objects could not be deleted")

    def report(self, sentence: str, count: int) -> None:
        if count:
            self.stdout.write(sentence.format(count))

    def apply_retention(self, dry_run: bool) -> int:
        """Trash and replaced versions past their days; their content goes in the same
        transactions, when nothing else needs it (its objects just after: what cannot be
        deleted then, no record covers any more, and the orphan scan finds it). One entry that
        cannot be purged (a deadlock, a lost connection) does not stop the others or the rest
        of the run: how many could not."""
        unpurged = 0
        for item in expired_trash():
            verb = "would purge" if dry_run else "purging"
            self.stdout.write(f"{verb} {item.original_path} (trashed {item.trashed_at:%Y-%m-%d})")
            if dry_run:
                continue
            try:
                purge_item(item)
            except (DatabaseError, ServiceError) as exc:
                unpurged += 1
                self.stderr.write(f"could not purge {item.original_path}: {exc}")
        if dry_run:
            self.report("would remove {} versions past VERSION_RETENTION_DAYS", expired_versions())
        else:
            self.report("removed {} versions past VERSION_RETENTION_DAYS", expire_versions())
        return unpurged

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
        return [key for upload in expired for key in remove_expired_upload(store, upload)]

    def remove_orphans(self, store: ChunkStore, grace: timedelta, dry_run: bool) -> list[str]:
        self.stdout.write(f"scanning {store.description} ...")
        scan = scan_orphans(store, grace)
        for orphan in scan.orphans:
            self.stdout.write(
                f"orphan {orphan.file_id}: {len(orphan.objects)} objects, "
                f"{human_size(orphan.size)}, newest {orphan.newest:%Y-%m-%d %H:%M:%S} UTC"
            )
        objects = sum(len(orphan.objects) for orphan in scan.orphans)
        self.stdout.write(
            f"found {len(scan.orphans)} orphaned uploads ({objects} objects, "
            f"{human_size(sum(o.size for o in scan.orphans))}); left alone: {scan.committed} "
            f"covered by a record, {scan.young} uncovered but younger than "
            f"{grace.total_seconds() / 60:g} minutes"
        )
        if dry_run:
            self.stdout.write("dry run: nothing deleted")
            return []
        failed = [key for orphan in scan.orphans for key in delete_orphan(store, orphan)]
        self.stdout.write(self.style.SUCCESS(f"deleted {objects - len(failed)} objects"))
        return failed
