"""The base of every error the API answers with."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the API reports. `detail` defaults to the class's sentence."""

    status = 500
    code = "internal_error"
    default_detail = "the server failed; the error has been logged"
    reason: str | None = None  # the status line's phrase, where HTTP has none of its own
    # Our failure (a dependency, a bug) rather than the client's request: logged, and the
    # client is told only its kind.
    server_fault = True

    def __init__(self, detail: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.detail = detail or self.default_detail
        self.headers = headers or {}
        super().__init__(self.detail)

    @property
    def public_detail(self) -> str:
        """What the client is told: its own mistake in full; of our failures, only the kind
        (the specifics, such as hosts and keys, go to the log)."""
        return self.default_detail if self.server_fault else self.detail


class ClientError(ServiceError):
    """The request's fault: the detail tells the client exactly what to change."""

    server_fault = False
