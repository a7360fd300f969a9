# LabDropbox — the README's commands. `make help` lists them.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export SERVICE_PORT ?= 8080

# The MySQL + Redis + S3 stack that `make test-services` runs the suite against. The S3 server
# is moto, started by the tests themselves on a loopback port. The tests, `make load` and the
# benchmark DROP and recreate the databases whose names start with TEST_DB on that server, and
# flush Redis database REDIS_TEST_DB: point them at a server of their own, or change the names.
TEST_DB ?= labdropbox_test
MYSQL_HOST ?= 127.0.0.1
MYSQL_PORT ?= 3306
MYSQL_USER ?= root
MYSQL_PASSWORD ?=
REDIS_TEST_HOST ?= 127.0.0.1
REDIS_TEST_DB ?= 15
SERVICES_ENV := DB_ENGINE=mysql TIDB_HOST=$(MYSQL_HOST) TIDB_PORT=$(MYSQL_PORT) \
	TIDB_USER=$(MYSQL_USER) TIDB_PASSWORD=$(MYSQL_PASSWORD) TIDB_DATABASE=$(TEST_DB) \
	TEST_DATABASE_PREFIX=$(TEST_DB) REDIS_HOST=$(REDIS_TEST_HOST) REDIS_DB=$(REDIS_TEST_DB) \
	SECRET_KEY=test-services-only
# `make test` is the embedded defaults whatever the calling shell has configured.
EMBEDDED_ENV := env -u MINIO_ENDPOINT -u TIDB_HOST -u REDIS_HOST -u JAEGER_ENDPOINT

# Root installs system packages directly; anyone else through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# $(call install-missing,command:package …[,apt-get options]): apt-get install the packages
# whose command is absent.
define install-missing
missing=$$(for tool in $(1); do \
	PATH=$$PATH:/usr/sbin command -v $${tool%%:*} >/dev/null || echo $${tool##*:}; done); \
if [ -n "$$missing" ]; then \
	$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $(2) $$missing; fi
endef

.PHONY: help run test test-services test-rgw rgw-tools node-tools load bench bench-smoke bench-tools \
	lint format screenshot check-mysql-headers test-tools clean docker-build docker-up docker-down docker-logs migrate \
	k8s-deploy k8s-migrate k8s-status k8s-delete

help:
	@echo "make run            start the service on http://127.0.0.1:$(SERVICE_PORT) (embedded defaults)"
	@echo "make test           the whole test suite: SQLite, local-memory cache, filesystem + S3 (moto)"
	@echo "make test-services  the suite again on MariaDB/MySQL + Redis + S3 (see MYSQL_*, REDIS_TEST_*;"
	@echo "                    drops and recreates the databases named $(TEST_DB)*, flushes Redis db $(REDIS_TEST_DB))"
	@echo "make test-rgw       the S3 tests against Ceph's RADOS Gateway (installs Debian's ceph)"
	@echo "make load           the bounded load test (16 clients of 4 users, 1,200 steps), full stack"
	@echo "make bench          the benchmark (bench/results.json, docs/read-latency.png)"
	@echo "make bench-smoke    the benchmark at tiny sizes: checks every figure is produced"
	@echo "make lint           ruff check, ruff format --check and mypy"
	@echo "make screenshot     redraw the waterfall and Prometheus pictures into $(SCREENSHOT_DIR)"
	@echo "make docker-up      the full stack with docker compose (docker-down, docker-logs, migrate)"
	@echo "make k8s-deploy     Kubernetes, K8S_FLAVOUR=dev or tidb-operator (k8s-status, k8s-delete)"

# Stamp files: reinstall only when a requirements file changes.
$(VENV)/.base: requirements/base.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements/base.txt
	touch $@

$(VENV)/.dev: $(VENV)/.base requirements/dev.txt
	$(BIN)/python -m pip install -q -r requirements/dev.txt
	touch $@

$(VENV)/.mysql: $(VENV)/.base requirements/mysql.txt
	@$(MAKE) --no-print-directory check-mysql-headers
	$(BIN)/python -m pip install -q -r requirements/mysql.txt
	touch $@

# Programs the tests drive: Debian's Chromium for the admin's browser test (Playwright uses it
# and downloads no browser of its own), curl and aria2c as real HTTP clients, and nginx (the
# reverse proxy of the compose stack and Kubernetes, tested in front of the service), Node and
# npm (tus-js-client). wget resumes downloads through share links. Prometheus (and promtool)
# scrapes the service in the metrics tests. OpenSSH's server is the SFTP server, and Azurite (npm)
# the Azure Blob Storage, that CHUNK_STORAGE=django is tested against. litmus (WebDAV's
# conformance suites), rclone and cadaver are the WebDAV clients /dav/ is tested with.
TEST_TOOLS := chromium:chromium curl:curl wget:wget aria2c:aria2 nginx:nginx-light node:nodejs npm:npm \
	prometheus:prometheus promtool:prometheus sshd:openssh-server ssh-keygen:openssh-client \
	litmus:litmus rclone:rclone cadaver:cadaver
test-tools:
	@$(call install-missing,$(TEST_TOOLS))
	@$(MAKE) --no-print-directory node-tools

# From the npm registry, as locked: tus-js-client under Node for the resumable-upload tests,
# Azurite for the Azure Blob Storage tests and axe-core for the web app's accessibility checks.
node-tools: testing/tus-js/node_modules/.installed testing/azurite/node_modules/.installed \
	testing/axe/node_modules/.installed
testing/%/node_modules/.installed: testing/%/package-lock.json
	cd testing/$* && npm ci --no-audit --no-fund --silent
	touch $@

check-mysql-headers:
	@pkg-config --exists libmariadb || pkg-config --exists mysqlclient || { \
		echo "mysqlclient needs the MariaDB/MySQL client headers:"; \
		echo "  apt-get install libmariadb-dev pkg-config"; exit 1; }

run: $(VENV)/.base
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/gunicorn -c deploy/gunicorn.conf.py

# Everything that needs nothing but Python; the fault tests of MariaDB and Redis (marked
# `stack`) run in test-services.
test: $(VENV)/.dev test-tools
	$(EMBEDDED_ENV) $(BIN)/pytest -m "not stack"

test-services: $(VENV)/.dev $(VENV)/.mysql test-tools
	$(SERVICES_ENV) $(BIN)/pytest --store=s3

# The tests that talk to S3, against a real S3 implementation: a throwaway single-node Ceph
# cluster (testing/rgw.py) under RGW_DIR, stopped whatever happens.
RGW_DIR ?= /tmp/labdropbox-rgw
test-rgw: $(VENV)/.dev test-tools rgw-tools
	$(BIN)/python -m testing.rgw start --dir $(RGW_DIR)
	trap '$(BIN)/python -m testing.rgw stop --dir $(RGW_DIR)' EXIT; \
	eval "$$($(BIN)/python -m testing.rgw env --dir $(RGW_DIR))" && \
	$(EMBEDDED_ENV) $(BIN)/pytest --s3-only -m "not stack"

# Ceph's monitor, OSD and RADOS Gateway from Debian (about 270 MB; recommends left out).
RGW_TOOLS := ceph-mon:ceph-mon ceph-osd:ceph-osd radosgw:radosgw
rgw-tools:
	@$(call install-missing,$(RGW_TOOLS),--no-install-recommends)

# The full bounded load test: 16 clients, 1,200 steps on moto + gunicorn + MariaDB + Redis.
load: $(VENV)/.dev $(VENV)/.mysql
	$(SERVICES_ENV) $(BIN)/python -m bench.load --clients 16 --operations 1200

# Every measurement side by side; writes bench/results.json and docs/read-latency.png, or with
# S3=rgw (Ceph's RADOS Gateway instead of moto) bench/results-rgw.json and read-latency-rgw.png.
S3 ?= moto
bench: $(VENV)/.dev $(VENV)/.mysql test-tools bench-tools
	$(SERVICES_ENV) $(BIN)/python -m bench.run --s3 $(S3)

# The whole harness at tiny sizes (CI): every figure must be produced; no timing is judged.
bench-smoke: $(VENV)/.dev $(VENV)/.mysql test-tools bench-tools
	$(SERVICES_ENV) $(BIN)/python -m bench.run --smoke --s3 $(S3) \
		--out /tmp/labdropbox-bench-smoke-$(S3).json --chart /tmp/labdropbox-bench-smoke-$(S3).png

# wrk (the small-file load) from Debian's packages; nginx, the static-file yardstick, comes
# with the test tools, and its dav-ext module (PROPFIND) makes it the WebDAV yardstick; Ceph for
# S3=rgw.
BENCH_TOOLS := wrk:wrk
DAV_EXT_MODULE := /usr/lib/nginx/modules/ngx_http_dav_ext_module.so
bench-tools:
	@$(call install-missing,$(BENCH_TOOLS))
	@test -e $(DAV_EXT_MODULE) || { $(SUDO) apt-get update -q && \
		$(SUDO) apt-get install -y -q libnginx-mod-http-dav-ext; }
	@if [ "$(S3)" = rgw ]; then $(MAKE) --no-print-directory rgw-tools; fi

# Redraw the waterfall of a real 10-chunk read, Prometheus scraping a load and the web app,
# through the browser tests, into SCREENSHOT_DIR (SCREENSHOT_DIR=docs replaces the committed
# pictures).
SCREENSHOT_DIR ?= var/screenshots
screenshot: $(VENV)/.dev test-tools
	mkdir -p $(SCREENSHOT_DIR)
	WATERFALL_SCREENSHOT=$(abspath $(SCREENSHOT_DIR))/waterfall.png \
	METRICS_SCREENSHOT=$(abspath $(SCREENSHOT_DIR))/prometheus.png \
	WEBAPP_SCREENSHOT=$(abspath $(SCREENSHOT_DIR))/web-app.png \
		$(EMBEDDED_ENV) $(BIN)/pytest -q -m browser

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# --- The real stack: docker compose (MinIO, TiDB, Redis, Jaeger) and Kubernetes -------------------
IMAGE ?= labdropbox:1.0.0
K8S_FLAVOUR ?= dev

docker-build:
	docker build -t $(IMAGE) .

docker-up:
	docker compose up -d --build

docker-down:
	docker compose down

docker-logs:
	docker compose logs -f --tail=100

# Database, schema and bucket in the compose stack (docker-up runs it once by itself).
migrate:
	docker compose run --rm migrate

k8s-deploy:
	kubectl apply -k deploy/k8s/$(K8S_FLAVOUR)

# Run the migration Job again (a Job's template cannot change in place: replace it).
k8s-migrate:
	kubectl delete job labdropbox-migrate --ignore-not-found
	kubectl apply -k deploy/k8s/$(K8S_FLAVOUR)
	kubectl wait --for=condition=complete job/labdropbox-migrate --timeout=600s

k8s-status:
	kubectl get deployments,pods,services,jobs,hpa -l app.kubernetes.io/name=labdropbox
	kubectl get pods

k8s-delete:
	kubectl delete -k deploy/k8s/$(K8S_FLAVOUR) --ignore-not-found

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
