"""What a stored file may be called, and the plain-ASCII form of a name for old clients."""

from __future__ import annotations

import re
import unicodedata

from labdropbox.api.errors import InvalidName

MAX_NAME_LENGTH = 255
# Invisible characters that change how a name looks without showing: bidirectional overrides
# and isolates ("invoice\u202efdp.exe" shows as "invoiceexe.pdf"), zero-width spaces, the byte
# order mark, word joiners, soft hyphens. All of Unicode's format (Cf) category is refused but
# the zero-width joiner and non-joiner, which Persian and Indic scripts and emoji sequences need.
ALLOWED_FORMAT_CHARACTERS = {"\u200c", "\u200d"}
# Line and paragraph separators (Zl, Zp) and control characters (Cc) break lines and headers.
REFUSED_CATEGORIES = {"Cc": "control characters (such as CR or LF)", "Zl": "line separators"}
REFUSED_CATEGORIES["Zp"] = REFUSED_CATEGORIES["Zl"]
SAFE_ASCII = re.compile(r"[^A-Za-z0-9 !#$%&'()+,\-.;=@\[\]^_`{}~]")


def validate_name(name: str | None) -> str:
    """The name, unchanged, or InvalidName saying what is wrong with it."""
    if name is None or name == "":
        raise InvalidName("the name query parameter is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"the name is longer than {MAX_NAME_LENGTH} characters")
    for char in name:
        category = unicodedata.category(char)
        if category in REFUSED_CATEGORIES:
            raise InvalidName(f"the name contains {REFUSED_CATEGORIES[category]}")
        if category == "Cf" and char not in ALLOWED_FORMAT_CHARACTERS:
            raise InvalidName(
                f"the name contains the invisible character U+{ord(char):04X} "
                f"({unicodedata.name(char, 'format character')}), which can disguise a name"
            )
    return name


def ascii_fallback_name(name: str) -> str:
    """The name in plain, safe ASCII, for clients that ignore the exact (RFC 5987) form: accents
    dropped ("café" → "cafe"), anything else outside a safe set replaced by "_", so no path
    separator, no dot-segment and no hidden (dot-first) name can come out of it."""
    # NFKD also turns fullwidth and other compatibility forms into ASCII ("．．／" → "../"),
    # which is why the safe set is applied after it, not before.
    letters = "".join(
        char for char in unicodedata.normalize("NFKD", name) if not unicodedata.combining(char)
    )
    fallback = SAFE_ASCII.sub("_", letters).lstrip(".")
    return fallback or "download"
