"""What a file or folder may be called, where it is (a path), how names are compared, and the
plain-ASCII form of a name for old clients.

A name is kept as given, normalised to NFC (macOS sends NFD, Windows and Linux NFC: one name,
one form). Two names are the same when they are equal case folded (`Data.csv` is `data.csv`),
as Windows and macOS see them: `name_key` is what the database compares, a SHA-256, so that no
collation of any database decides.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from labdropbox.api.errors import InvalidName

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
# Invisible characters that change how a name looks without showing: bidirectional overrides
# and isolates ("invoice\u202efdp.exe" shows as "invoiceexe.pdf"), zero-width spaces, the byte
# order mark, word joiners, soft hyphens. All of Unicode's format (Cf) category is refused but
# the zero-width joiner and non-joiner, which Persian and Indic scripts and emoji sequences need.
ALLOWED_FORMAT_CHARACTERS = {"\u200c", "\u200d"}
# Line and paragraph separators (Zl, Zp) and control characters (Cc) break lines and headers.
REFUSED_CATEGORIES = {"Cc": "control characters (such as CR or LF)", "Zl": "line separators"}
REFUSED_CATEGORIES["Zp"] = REFUSED_CATEGORIES["Zl"]
SAFE_ASCII = re.compile(r"[^A-Za-z0-9 !#$%&'()+,\-.;=@\[\]^_`{}~]")


def validate_name(name: str | None, what: str = "name") -> str:
    """The name in NFC, or InvalidName saying what is wrong with it."""
    if name is None or name == "":
        raise InvalidName(f"the {what} is required")
    name = unicodedata.normalize("NFC", name)
    if len(name.encode()) > MAX_NAME_BYTES:
        raise InvalidName(f"the {what} is longer than {MAX_NAME_BYTES} bytes (UTF-8)")
    if "/" in name or name in (".", ".."):
        raise InvalidName(f"a {what} contains no '/' and is not '.' or '..'")
    for char in name:
        if is_noncharacter(char):
            # U+FFFE and U+FFFF cannot be written in XML at all (a WebDAV listing), nor the
            # others in many a program: Unicode keeps them out of interchange.
            raise InvalidName(f"the {what} contains the noncharacter U+{ord(char):04X}")
        category = unicodedata.category(char)
        if category in REFUSED_CATEGORIES:
            raise InvalidName(f"the {what} contains {REFUSED_CATEGORIES[category]}")
        if category == "Cf" and char not in ALLOWED_FORMAT_CHARACTERS:
            raise InvalidName(
                f"the {what} contains the invisible character U+{ord(char):04X} "
                f"({unicodedata.name(char, 'format character')}), which can disguise a name"
            )
    return name


def is_noncharacter(char: str) -> bool:
    """U+FDD0–U+FDEF, and the last two code points of every plane (U+FFFE, U+1FFFF…)."""
    point = ord(char)
    return 0xFDD0 <= point <= 0xFDEF or point & 0xFFFE == 0xFFFE


def parse_path(raw: str | None) -> list[str]:
    """A path's names from the root down (`/a/b/c.txt` → a, b, c.txt; `/` → none). Empty names
    (`//`, a trailing `/`) are dropped; anything else a name may not be is InvalidName."""
    if raw is None or not raw.startswith("/"):
        raise InvalidName("a path starts with '/'")
    names = [validate_name(part, "path's name") for part in raw.split("/") if part]
    if len(join_path(names).encode()) > MAX_PATH_BYTES:
        raise InvalidName(f"the path is longer than {MAX_PATH_BYTES} bytes (UTF-8)")
    return names


def parse_place(raw: str | None) -> list[str]:
    """A path something is put at (moved, copied, restored, made): anything but the root."""
    names = parse_path(raw)
    if not names:
        raise InvalidName("the root folder is not a place to put something at: name one in it")
    return names


def join_path(names: list[str]) -> str:
    return "/" + "/".join(names)


def name_key(name: str) -> str:
    """What two names that are the same have in common: the SHA-256 of the name in NFC, case
    folded (then NFC again: folding can undo it)."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())
    return hashlib.sha256(folded.encode()).hexdigest()


def sort_name(name: str) -> str:
    """What a listing sorts a name by: case folded, so that `b` comes between `A` and `C`."""
    return unicodedata.normalize("NFC", name).casefold()[:255]


def numbered(name: str, number: int) -> str:
    """`report.pdf` → `report (2).pdf`: a free name beside a taken one, its stem shortened if
    the number would take the name past MAX_NAME_BYTES."""
    stem, dot, extension = name.rpartition(".")
    if not stem:  # no extension, or a name starting with its only dot (.profile)
        stem, dot, extension = name, "", ""
    tail = f" ({number}){dot}{extension}"
    if len(tail.encode()) >= MAX_NAME_BYTES:  # an extension too long to keep whole
        stem, tail = name, f" ({number})"
    while len((stem + tail).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + tail


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
