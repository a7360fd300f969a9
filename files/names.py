"""What a stored file may be called."""

from __future__ import annotations

import unicodedata

from files.errors import InvalidName

MAX_NAME_LENGTH = 255


def validate_name(name: str | None) -> str:
    """The name, unchanged, or InvalidName saying what is wrong with it."""
    if name is None or name == "":
        raise InvalidName("the name query parameter is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"the name is longer than {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise InvalidName("the name contains control characters (such as CR or LF)")
    return name
