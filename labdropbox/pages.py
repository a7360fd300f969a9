"""What every HTML page the service renders for people (not the admin) carries.

The pages load scripts and styles only from files under /static/, never inline, so the policy
can forbid everything else: an injected `<script>` or `onclick=` does not run, and no other
site's code or frame is loaded.
"""

from __future__ import annotations

from django.http.response import HttpResponseBase

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def secured(response: HttpResponseBase) -> HttpResponseBase:
    """The page with its Content-Security-Policy (SecurityMiddleware adds the rest: its
    Referrer-Policy keeps a share page's URL, token and all, from other sites)."""
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def prefers_html(accept: str) -> bool:
    """A browser asking for a page: `text/html` named in Accept (curl, wget and aria2c send
    `*/*`, which means the bytes)."""
    for media_range in accept.split(","):
        kind, _, parameters = media_range.partition(";")
        if kind.strip().lower() == "text/html":
            return not any(
                name.strip() == "q" and value.strip() in ("0", "0.0", "0.00", "0.000")
                for name, _, value in (p.partition("=") for p in parameters.split(";"))
            )
    return False
