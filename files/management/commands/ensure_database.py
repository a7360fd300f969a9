from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Create the MySQL-protocol database (TIDB_DATABASE) if it does not exist, waiting for "
        "the server to come up with --wait. SQLite needs nothing: its file appears on first use."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--wait",
            type=float,
            default=0,
            metavar="SECONDS",
            help="keep trying for this long while the server does not answer (containers)",
        )

    def handle(self, *args: Any, wait: float, **options: Any) -> None:
        database = settings.DATABASES["default"]
        if str(database["ENGINE"]).endswith("sqlite3"):
            self.stdout.write(f"SQLite at {database['NAME']}: nothing to create")
            return
        name = str(database["NAME"])
        if "`" in name:
            raise CommandError(f"TIDB_DATABASE {name!r} may not contain a backtick")
        deadline = time.monotonic() + wait
        while True:
            try:
                created = create_database(database, name)
                break
            except Exception as exc:  # MySQLdb.OperationalError and friends: not up yet
                if time.monotonic() >= deadline:
                    raise CommandError(f"cannot reach {database['HOST']}: {exc}") from exc
                self.stderr.write(f"waiting for {database['HOST']}:{database['PORT']} ...")
                time.sleep(2)
        verb = "created database" if created else "database exists:"
        self.stdout.write(self.style.SUCCESS(f"{verb} {name} on {database['HOST']}"))


def create_database(database: dict, name: str) -> bool:
    """CREATE DATABASE IF NOT EXISTS, on a connection that names no database (Django's would
    fail: the database is what is missing). True if it had to be created."""
    import MySQLdb

    connection = MySQLdb.connect(
        host=database["HOST"],
        port=int(database["PORT"]),
        user=database["USER"],
        password=database["PASSWORD"],
        connect_timeout=database["OPTIONS"].get("connect_timeout", 5),
    )
    try:
        cursor = connection.cursor()
        existed = cursor.execute("SHOW DATABASES LIKE %s", [name])
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        return not existed
    finally:
        connection.close()
