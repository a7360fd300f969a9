"""How many sockets a worker may hold open: the process's descriptor limit, raised as far as
the system allows."""

from __future__ import annotations

import logging
import resource

# Descriptors a worker needs besides its connections: database, Redis and S3 connections, files.
SPARE_DESCRIPTORS = 512


def descriptors_for(connections: int, log: logging.Logger) -> int:
    """Raise the process's limit on open descriptors (the soft one, up to the hard one) so that
    `connections` sockets fit beside the worker's own files; the connections that fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + SPARE_DESCRIPTORS
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    fitting = max(wanted - SPARE_DESCRIPTORS, 1)
    if fitting < connections:
        log.warning("only %d connections fit under the descriptor limit (%d)", fitting, hard)
    return min(connections, fitting)
