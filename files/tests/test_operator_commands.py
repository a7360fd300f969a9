"""What an operator runs: `restore_trash` puts a user's trash back (all of it, since a day, or
from under a path; never over something that took a name meanwhile), `usage` reports what each
user stores against their quota."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from files.models import TrashEntry
from testing.uploads import WithToken, send
from testing.users import make_user

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def alice(client):
    user, token = make_user("alice", quota_bytes=10_000)
    return user, WithToken(client, token)


def put(as_user: WithToken, path: str, data: bytes) -> str:
    reply = send(as_user, "PUT", f"/write?path={path}", data)
    assert reply.status in (200, 201), reply.body
    return json.loads(reply.body)["file_id"]


def trash(as_user: WithToken, file_id: str) -> None:
    assert send(as_user, "DELETE", f"/files/{file_id}").status == 204


def listing(as_user: WithToken, path: str) -> list[str]:
    answer = json.loads(send(as_user, "GET", f"/files?path={path}").body)
    return sorted(entry["name"] for entry in answer.get("entries", []))


def test_restore_trash_puts_everything_back_but_never_over_a_taken_name(alice):
    user, as_alice = alice
    kept = put(as_alice, "/lab/a.csv", b"a")
    put(as_alice, "/lab/b.csv", b"b")
    trash(as_alice, kept)
    folder = json.loads(send(as_alice, "GET", "/files?path=/lab").body)["folder_id"]
    assert send(as_alice, "DELETE", f"/folders/{folder}").status == 204
    put(as_alice, "/lab/a.csv", b"new a")  # a.csv's place is taken meanwhile (the folder too)

    out = run("restore_trash", "alice")

    assert "kept in the trash: /lab/a.csv" in out
    assert "kept in the trash: /lab" in out
    assert "restored 0, kept 2" in out
    assert TrashEntry.objects.filter(owner=user).count() == 2


def test_restore_trash_chooses_by_day_and_path_and_a_dry_run_restores_nothing(alice):
    user, as_alice = alice
    old = put(as_alice, "/old/x.bin", b"x")
    trash(as_alice, old)
    TrashEntry.objects.filter(entry_id=old).update(trashed_at=timezone.now() - timedelta(days=9))
    recent = [put(as_alice, f"/runs/{n}.bin", b"r") for n in range(3)]
    other = put(as_alice, "/other/y.bin", b"y")
    for file_id in [*recent, other]:
        trash(as_alice, file_id)

    dry = run("restore_trash", "alice", "--path", "/runs", "--dry-run")
    assert dry.count("would restore /runs/") == 3
    assert listing(as_alice, "/runs") == []

    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%d")
    out = run("restore_trash", "alice", "--since", since, "--path", "/runs")

    assert "restored 3, kept 0" in out
    assert listing(as_alice, "/runs") == ["0.bin", "1.bin", "2.bin"]
    assert TrashEntry.objects.filter(owner=user).count() == 2  # /old/x.bin and /other/y.bin


def test_restore_trash_refuses_an_unknown_user_or_a_bad_day(alice):
    with pytest.raises(CommandError, match="no user 'bob'"):
        run("restore_trash", "bob")
    with pytest.raises(CommandError, match="not a date"):
        run("restore_trash", "alice", "--since", "yesterday")


def test_usage_reports_each_user_split_as_me_splits_it(client, alice):
    _, as_alice = alice
    _, bob_token = make_user("bob")
    put(as_alice, "/a.bin", b"1" * 1000)
    put(as_alice, "/a.bin", b"2" * 300)  # the 1000 bytes are an earlier version now
    gone = put(as_alice, "/b.bin", b"3" * 50)
    trash(as_alice, gone)
    put(WithToken(client, bob_token), "/c.bin", b"4" * 7)
    me = json.loads(send(as_alice, "GET", "/me").body)

    out = run("usage", "--bytes")

    header, alice_row, bob_row, total = out.splitlines()
    assert header.split() == [
        "user", "quota", "used", "current", "versions", "trash", "reserved", "files", "trashed",
    ]  # fmt: skip
    assert alice_row.split() == [
        "alice", "10000", str(me["used_bytes"]), "300", "1000", "50", "0", "1", "1",
    ]  # fmt: skip
    assert bob_row.split()[:3] == ["bob", "unlimited", "7"]
    assert total.startswith("2 users")

    assert run("usage", "bob").splitlines()[1].split()[0] == "bob"
    with pytest.raises(CommandError, match="no such users: carol"):
        run("usage", "carol")
