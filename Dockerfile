# syntax=docker/dockerfile:1
# LabDropbox: the service under gunicorn with deploy/gunicorn.conf.py (the config of `make run`).

# --- build: wheels for everything, mysqlclient compiled against the MariaDB client headers -----
FROM python:3.11.11-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libmariadb-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements/base.txt requirements/mysql.txt requirements/
RUN pip wheel --no-cache-dir --wheel-dir /wheels \
    -r requirements/base.txt -r requirements/mysql.txt

# --- runtime: the client library only, no compilers, no dev dependencies ------------------------
FROM python:3.11.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmariadb3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin labdropbox
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/* && rm -rf /wheels

WORKDIR /app
COPY --chown=labdropbox:labdropbox . .
# Static files for the admin, served by whitenoise (loading the settings writes nothing).
RUN python manage.py collectstatic --noinput -v0 \
    && mkdir -p /data && chown labdropbox:labdropbox /data

ENV PYTHONUNBUFFERED=1 \
    SERVICE_HOST=0.0.0.0 \
    SERVICE_PORT=8080 \
    DATA_DIR=/data
USER labdropbox
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SERVICE_PORT', '8080') + '/health', timeout=2)"]
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
