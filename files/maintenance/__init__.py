"""Checking and tidying what is stored: `manage.py verify` and the admin's "verify integrity"
(`verify`), and `manage.py cleanup` (`cleanup`: what nothing references, what has expired)."""

from __future__ import annotations

from django.template.defaultfilters import filesizeformat


def human_size(size: int) -> str:
    return filesizeformat(size).replace("\xa0", " ")
