"""LabDropbox settings, read once from environment variables.

With nothing set the service runs embedded: SQLite, chunk objects in a folder and a local-memory
cache, all under DATA_DIR. Each real component switches on when its variable is set:
MINIO_ENDPOINT (S3) or CHUNK_STORAGE (a Django storage backend), TIDB_HOST (MySQL protocol) and
REDIS_HOST (Redis). Importing this module writes nothing (labdropbox/data_dir.py creates the
folder and the key at start-up).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from corsheaders.defaults import default_headers as cors_default_headers
from django.core.exceptions import ImproperlyConfigured

from labdropbox.data_dir import data_dir, key_is_generated, read_key_file, runs_embedded
from labdropbox.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_json_object,
    env_list,
    env_name,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024

DEBUG = env_bool("DEBUG", False)
DATA_DIR = data_dir()

MINIO_ENDPOINT = env_str("MINIO_ENDPOINT")
TIDB_HOST = env_str("TIDB_HOST")
REDIS_HOST = env_str("REDIS_HOST")
# `django`: chunk objects go through the Django storage STORAGES["chunks"] (below) instead of
# the S3 bucket of MINIO_ENDPOINT or the folder under DATA_DIR.
CHUNK_STORAGE = env_choice("CHUNK_STORAGE", "", ("", "django"))
EMBEDDED = runs_embedded()


def _secret_key() -> str:
    """The configured key, or in embedded/debug mode the one generated into DATA_DIR."""
    configured = env_str("SECRET_KEY")
    if configured:
        return configured
    if not key_is_generated():
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when MINIO_ENDPOINT, TIDB_HOST, REDIS_HOST or CHUNK_STORAGE "
            "is configured"
        )
    # A process started by none of the entry points that generate the key (a test run, a
    # one-off script) gets a key of its own: it signs nothing that another process must read.
    return read_key_file(DATA_DIR) or secrets.token_urlsafe(50)


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
# Users' API tokens (manage.py create_token) are the way in; API_TOKEN, when set, is one more
# token with staff rights (it sees every file), for deployments from before users existed.
API_TOKEN = env_str("API_TOKEN")
# Whether the API answers requests without a token (their files belong to no one). Open by
# default only when the service runs embedded with no API_TOKEN: a laptop, not a deployment.
API_OPEN = env_bool("API_OPEN", EMBEDDED and not API_TOKEN)
# A user's storage quota unless the admin sets theirs (unset: unlimited).
DEFAULT_QUOTA_MB: int | None = (
    env_int("DEFAULT_QUOTA_MB", 0, minimum=0) if env_str("DEFAULT_QUOTA_MB") else None
)
# How long a token's check is answered from the cache (a revoked token's entry is dropped at
# once; with the local-memory cache, other worker processes keep theirs up to this long).
TOKEN_CACHE_SECONDS = env_int("TOKEN_CACHE_SECONDS", 30, minimum=0)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# Web pages on these origins may call the API from a browser (django-cors-headers answers their
# preflights); other pages' writes are refused (labdropbox/api/views.py). The tus headers cross too.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", "")
CORS_URLS_REGEX = r"^/(?!admin/|static/).*$"
CORS_ALLOW_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
CORS_ALLOW_HEADERS = (
    *cors_default_headers,
    "if-range",
    "range",
    "tus-resumable",
    "upload-checksum",
    "upload-concat",
    "upload-defer-length",
    "upload-length",
    "upload-metadata",
    "upload-offset",
    "x-http-method-override",
)
CORS_EXPOSE_HEADERS = (
    "content-disposition",
    "content-range",
    "etag",
    "location",
    "traceresponse",
    "tus-checksum-algorithm",
    "tus-extension",
    "tus-max-size",
    "tus-resumable",
    "tus-version",
    "upload-concat",
    "upload-defer-length",
    "upload-expires",
    "upload-length",
    "upload-metadata",
    "upload-offset",
)

# --- Behind a TLS-terminating proxy ------------------------------------------------------------
# The proxies whose X-Forwarded-For is believed (addresses or networks): login throttling and
# logs then see the client, not the proxy.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER")  # e.g. X-Forwarded-Proto
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# The health probes come over plain HTTP from inside the cluster, whatever the outside uses.
SECURE_REDIRECT_EXEMPT = [r"^health"]

# --- Admin login throttling (django-axes) ------------------------------------------------------
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("ADMIN_LOGIN_COOLOFF_MINUTES", 15.0, minimum=0.1))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "labdropbox.proxies.client_address"
AXES_VERBOSE = False
# The web app's sign-in page (the admin has its own), and where signing in leads.
LOGIN_URL = "web:sign-in"
LOGIN_REDIRECT_URL = "web:browse"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "corsheaders",
    "files",
    "traces",
    "accounts",
    "metrics",
    "dav",
    "web",
]

MIDDLEWARE = [
    "labdropbox.tracing.RouteSpanNameMiddleware",
    # Before anything that can answer: it answers CORS preflights itself.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Who an API request acts for (a token, a staff session, or no one while API_OPEN).
    "accounts.middleware.CallerMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as its documentation asks: it answers a locked-out login with 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "labdropbox.urls"
WSGI_APPLICATION = "labdropbox.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Metadata database -------------------------------------------------------------------------
DB_ENGINE = env_choice("DB_ENGINE", "tidb", ("tidb", "mysql"))
# Bounded waits: an unreachable or stalled database becomes a 503, not a hung request.
DB_CONNECT_TIMEOUT = env_int("DB_CONNECT_TIMEOUT", 5, minimum=1)
DB_QUERY_TIMEOUT = env_int("DB_QUERY_TIMEOUT", 30, minimum=1)
# Connections a process keeps open between requests (labdropbox/db_connections.py): the rest
# are closed as their requests end, so a burst cannot hold the database's connections.
DB_KEPT_CONNECTIONS = env_int("DB_KEPT_CONNECTIONS", 16, minimum=1)
if TIDB_HOST:
    DATABASES = {
        "default": {
            "ENGINE": "django_tidb" if DB_ENGINE == "tidb" else "django.db.backends.mysql",
            "HOST": TIDB_HOST,
            "PORT": env_int("TIDB_PORT", 4000, minimum=1, maximum=65535),
            "USER": env_str("TIDB_USER", "root"),
            "PASSWORD": env_str("TIDB_PASSWORD"),
            "NAME": env_str("TIDB_DATABASE", "labdropbox"),
            # Reuse connections across requests; health checks drop ones the server closed.
            "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 60, minimum=0),
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {
                "charset": "utf8mb4",
                "connect_timeout": DB_CONNECT_TIMEOUT,
                "read_timeout": DB_QUERY_TIMEOUT,
                "write_timeout": DB_QUERY_TIMEOUT,
            },
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "labdropbox.sqlite3"),
            "OPTIONS": {
                # Several gunicorn threads write: take the write lock up front and wait for it
                # rather than failing with "database is locked".
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Metadata cache ----------------------------------------------------------------------------
CACHE_TTL_SECONDS = env_int("CACHE_TTL_SECONDS", 300, minimum=1)
# Short timeouts and ignored (but logged) errors: a Redis outage costs a request at most these
# waits, then the database answers instead.
REDIS_TIMEOUT_SECONDS = env_float("REDIS_TIMEOUT_SECONDS", 0.25, minimum=0.01)
if REDIS_HOST:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://{}:{}/{}".format(
                REDIS_HOST,
                env_int("REDIS_PORT", 6379, minimum=1, maximum=65535),
                env_int("REDIS_DB", 0, minimum=0),
            ),
            "TIMEOUT": CACHE_TTL_SECONDS,
            "KEY_PREFIX": "labdropbox",
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT_SECONDS,
                "SOCKET_TIMEOUT": REDIS_TIMEOUT_SECONDS,
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    DJANGO_REDIS_LOGGER = "files.metadata"
else:
    # Per process: the gunicorn config runs a single worker process (with threads) in this mode
    # so that every request sees the same cache.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "TIMEOUT": CACHE_TTL_SECONDS,
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    }

# --- Chunking ----------------------------------------------------------------------------------
# S3 takes at most 5 GiB in one PUT, which bounds a chunk. CHUNK_SIZE_BYTES wins if set.
CHUNK_SIZE = env_int(
    "CHUNK_SIZE_BYTES",
    env_int("CHUNK_SIZE_MB", 1, minimum=1, maximum=5 * 1024) * MIB,
    minimum=1,
    maximum=5 * 1024 * MIB,
)
READ_CONCURRENCY = env_int("READ_CONCURRENCY", 16, minimum=1, maximum=256)
UPLOAD_CONCURRENCY = env_int("UPLOAD_CONCURRENCY", 4, minimum=1, maximum=64)
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_MB", 10240, minimum=0) * MIB
# One memory budget per worker process for the chunks its transfers hold: more transfers at
# once each work ahead less, then wait their turn (files/buffers.py). At least two chunks.
CHUNK_MEMORY_BYTES = (
    env_int("CHUNK_MEMORY_MB", max(128, 16 * -(-CHUNK_SIZE // MIB)), minimum=1) * MIB
)
if CHUNK_MEMORY_BYTES < 2 * CHUNK_SIZE:
    raise ImproperlyConfigured(
        f"CHUNK_MEMORY_MB must hold at least two chunks ({2 * CHUNK_SIZE} bytes), "
        f"got {CHUNK_MEMORY_BYTES} bytes"
    )
# The contents of small files (one chunk of at most 64 KiB) a worker keeps after reading them,
# for the next reads (files/small_files.py); 0 turns it off.
SMALL_FILE_CACHE_BYTES = env_int("SMALL_FILE_CACHE_MB", 16, minimum=0) * MIB
# How long a transfer waits for its first buffer before it is answered 503 server_busy.
CHUNK_MEMORY_WAIT_SECONDS = env_float("CHUNK_MEMORY_WAIT_SECONDS", 30.0, minimum=0.1)
# An upload whose client sends nothing for this long fails (and keeps nothing).
UPLOAD_IDLE_TIMEOUT_SECONDS = env_float("UPLOAD_IDLE_TIMEOUT_SECONDS", 60.0, minimum=1.0)
# A resumable upload nobody has written to for this long expires; `cleanup` removes it.
UPLOAD_EXPIRY_HOURS = env_float("UPLOAD_EXPIRY_HOURS", 24.0, minimum=0.01)
# Unfinished resumable uploads one user may have at once (each holds its quota space).
MAX_UNFINISHED_UPLOADS = env_int("MAX_UNFINISHED_UPLOADS", 100, minimum=1)
# Live share links one file may have at once.
MAX_LINKS_PER_FILE = env_int("MAX_LINKS_PER_FILE", 100, minimum=1)
# What is trashed, and versions that were replaced, are kept this long; `cleanup` removes them.
TRASH_RETENTION_DAYS = env_float("TRASH_RETENTION_DAYS", 30.0, minimum=0)
VERSION_RETENTION_DAYS = env_float("VERSION_RETENTION_DAYS", 30.0, minimum=0)
# Threads shared by every request of a process for chunk I/O; each request still keeps at most
# its READ_/UPLOAD_CONCURRENCY chunks in flight.
CHUNK_IO_THREADS = env_int(
    "CHUNK_IO_THREADS",
    4 * max(READ_CONCURRENCY, UPLOAD_CONCURRENCY),
    minimum=max(READ_CONCURRENCY, UPLOAD_CONCURRENCY),
)

# --- Chunk object storage ----------------------------------------------------------------------
CHUNK_DIR = DATA_DIR / "chunks"
MINIO_ACCESS_KEY = env_str("MINIO_ACCESS_KEY", "minioadmin")
MINIO_SECRET_KEY = env_str("MINIO_SECRET_KEY", "minioadmin")
MINIO_BUCKET = env_str("MINIO_BUCKET", "labdropbox")
MINIO_SECURE = env_bool("MINIO_SECURE", False)
MINIO_REGION = env_str("MINIO_REGION", "us-east-1")
# Bounded waits on the chunk store, whichever it is (S3, or Azure, SFTP, GCS through
# CHUNK_STORAGE=django): a store that hangs costs a request seconds, not minutes. The S3_* names
# of earlier releases are still read.
STORAGE_CONNECT_TIMEOUT = env_float(
    env_name("STORAGE_CONNECT_TIMEOUT", "S3_CONNECT_TIMEOUT"), 3.0, minimum=0.1
)
STORAGE_READ_TIMEOUT = env_float(
    env_name("STORAGE_READ_TIMEOUT", "S3_READ_TIMEOUT"), 20.0, minimum=0.1
)
STORAGE_MAX_ATTEMPTS = env_int(
    env_name("STORAGE_MAX_ATTEMPTS", "S3_MAX_ATTEMPTS"), 3, minimum=1, maximum=10
)
# With CHUNK_STORAGE=django: any Django storage backend (django-storages' S3Storage,
# AzureStorage, GoogleCloudStorage, SFTPStorage…) and its options as a JSON object. A settings
# module of your own may set STORAGES["chunks"] instead.
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if CHUNK_STORAGE_BACKEND := env_str("CHUNK_STORAGE_BACKEND"):
    STORAGES["chunks"] = {
        "BACKEND": CHUNK_STORAGE_BACKEND,
        "OPTIONS": env_json_object("CHUNK_STORAGE_OPTIONS"),
    }

# --- Tracing -----------------------------------------------------------------------------------
SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "labdropbox-service")
JAEGER_ENDPOINT = env_str("JAEGER_ENDPOINT")
JAEGER_UI_URL = env_str("JAEGER_UI_URL").rstrip("/")
# Whether a client's traceparent makes our spans part of its trace (and its sampled flag decide
# whether we record). Off: every request starts a trace of its own, linked to the client's.
OTEL_TRUST_INCOMING_CONTEXT = env_bool("OTEL_TRUST_INCOMING_CONTEXT", False)
# Bounds each OTLP export and the flush at worker exit: a stalled collector costs spans, not time.
OTLP_TIMEOUT_SECONDS = env_int("OTLP_TIMEOUT_SECONDS", 5, minimum=1)
# The built-in recorder keeps this many traces for the admin's waterfall; 0 turns it off.
TRACE_RECORDER_KEEP = env_int("TRACE_RECORDER_KEEP", 500, minimum=0)
# Under load the recorder samples: at most this many traces a second, per worker.
TRACE_RECORDER_PER_SECOND = env_float("TRACE_RECORDER_PER_SECOND", 20.0, minimum=0.1)

# Prometheus metrics at /metrics (metrics/). Scraped with METRICS_TOKEN as the bearer token, or
# from METRICS_ALLOWED_NETWORKS (and by anyone while API_OPEN is on).
METRICS_ENABLED = env_bool("METRICS_ENABLED", True)
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")

# --- Static files (the admin's), served by whitenoise with DEBUG off ---------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles"))).resolve()

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        # No token, share link or Authorization value in any line, whoever logs it.
        "redact_secrets": {"()": "labdropbox.redaction.RedactSecrets"},
        "client_fault": {"()": "labdropbox.redaction.ClientFaultWithoutTraceback"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # A Host header the service does not answer to is the client's mistake, not an error.
        "django.security.DisallowedHost": {"filters": ["client_fault"]},
        # The Azure SDK logs every request and response at INFO, paramiko every connection.
        "azure": {"level": "WARNING"},
        "paramiko": {"level": "WARNING"},
    },
}
