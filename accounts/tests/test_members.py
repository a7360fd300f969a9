"""manage.py create_member: a member with a password from standard input, and a quota."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from accounts.models import Quota

pytestmark = pytest.mark.django_db


def create_member(monkeypatch: pytest.MonkeyPatch, password: str, *args: str) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    out = io.StringIO()
    call_command("create_member", *args, stdout=out)
    return out.getvalue()


def test_a_member_gets_the_piped_password_and_a_quota(monkeypatch):
    said = create_member(monkeypatch, "a long enough secret", "ada", "--quota-mb", "5")

    user = get_user_model().objects.get(username="ada")
    assert user.check_password("a long enough secret") and not user.is_staff
    assert Quota.objects.get(user=user).limit_bytes == 5 * 1024 * 1024
    assert "a long enough secret" not in said


@pytest.mark.parametrize(
    ("password", "args", "why"),
    [
        ("short", ("ada",), "too short"),
        ("a long enough secret", ("ada", "--quota-mb", "-1"), "--quota-mb"),
    ],
)
def test_weak_passwords_and_bad_quotas_are_refused(monkeypatch, password, args, why):
    with pytest.raises(CommandError, match=why):
        create_member(monkeypatch, password, *args)

    assert not get_user_model().objects.filter(username="ada").exists()


def test_an_existing_user_is_left_alone(monkeypatch):
    get_user_model().objects.create_user("ada", password="the old one, kept")

    with pytest.raises(CommandError, match="already"):
        create_member(monkeypatch, "a long enough secret", "ada")

    assert get_user_model().objects.get(username="ada").check_password("the old one, kept")
