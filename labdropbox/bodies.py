"""A WSGI response body passed through with its bytes counted, for whoever must know what was
sent once the server is done with it (the metrics, a share link's byte count)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator


class CountedBody:
    """`body`, piece by piece; when the server closes it — sent, failed or abandoned — the body's
    own close() runs, then `on_close(bytes sent)`."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[int], None]) -> None:
        self.body, self.on_close, self.sent = body, on_close, 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.body:
            self.sent += len(piece)
            yield piece

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.on_close(self.sent)
