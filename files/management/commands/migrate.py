from __future__ import annotations

from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrate

from labdropbox.data_dir import prepare_data_dir


class Command(DjangoMigrate):
    help = (
        DjangoMigrate.help
        + " In embedded mode it first creates DATA_DIR (the SQLite file's folder) and the "
        "generated secret key."
    )

    def execute(self, *args: Any, **options: Any) -> str | None:
        # Before the system checks, which already open the database.
        prepare_data_dir()
        return super().execute(*args, **options)
