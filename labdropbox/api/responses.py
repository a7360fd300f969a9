"""The API's JSON answers."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse


class JsonAnswer(JsonResponse):
    """A JSON response whose body ends with a newline, as command-line tools expect: after
    `curl` prints it, the shell's prompt starts on a line of its own."""

    def __init__(self, data: Any, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.content = self.content + b"\n"
