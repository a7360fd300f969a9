"""Secrets kept out of every log line: a share link's token (its path is the secret), API
tokens, and the credentials of an Authorization header. One filter, on the handlers of Django's
logging and gunicorn's error and access logs, rewrites each record before it is written —
whichever logger wrote it (Django's request logger prints the paths of 4xx answers)."""

from __future__ import annotations

import logging
import re

SECRETS = (
    (re.compile(r"/s/[^/?#\s\"']+"), "/s/{token}"),
    (re.compile(r"\b(Bearer|Basic)\s+[^\s\"',;]+", re.IGNORECASE), r"\1 [redacted]"),
    (re.compile(r"\bldb_[A-Za-z0-9_-]+"), "ldb_[redacted]"),
)


def redact(text: str) -> str:
    for secret, replacement in SECRETS:
        text = secret.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (and its traceback, formatted here) without secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class ClientFaultWithoutTraceback(logging.Filter):
    """For loggers that report a client's mistake as an error with a traceback (Django's
    DisallowedHost): a warning, on one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
