"""The examples of the README and docs/, as one shell script per document: each ```bash block as
it is, each ```python and ```js block fed to the interpreter, in the order they appear. A block
right under `<!-- example: skip (why) -->` is left out; so is any other language (output,
trees, configuration)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"^<!-- example: skip \((?P<reason>[^)]+)\) -->$")
RUNNERS = {"bash": None, "python": ".venv/bin/python -", "js": "node -"}


@dataclass(frozen=True)
class Example:
    document: Path
    line: int  # of the opening fence
    language: str
    code: str
    skipped_because: str | None

    @property
    def where(self) -> str:
        return f"{self.document.name}:{self.line}"


def examples(document: Path) -> list[Example]:
    """Every fenced block of a document in one of RUNNERS' languages."""
    found: list[Example] = []
    lines = document.read_text().splitlines()
    position = 0
    while position < len(lines):
        opening = FENCE.match(lines[position])
        if opening is None:
            position += 1
            continue
        end = lines.index("```", position + 1)
        above = lines[position - 1] if position else ""
        skip = SKIP.match(above)
        if opening.group(1) in RUNNERS:
            code = "\n".join(lines[position + 1 : end])
            reason = skip.group("reason") if skip else None
            found.append(Example(document, position + 1, opening.group(1), code, reason))
        position = end + 1
    return found


def script(runnable: list[Example], base_url: str) -> str:
    """One bash script running the examples in order, each announced on stderr (so a failure
    says which), with the documented address replaced by `base_url`."""
    parts = ["set -euo pipefail"]
    for number, example in enumerate(runnable):
        code = re.sub(r"http://(localhost|127\.0\.0\.1):8080", base_url, example.code)
        parts.append(f"echo '--- example {example.where}' >&2")
        runner = RUNNERS[example.language]
        if runner is None:
            parts.append(code)
        else:
            parts.append(f"{runner} <<'EXAMPLE_{number}'\n{code}\nEXAMPLE_{number}")
    return "\n".join(parts) + "\n"
