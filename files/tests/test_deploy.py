"""The Dockerfile, docker-compose.yml and Kubernetes manifests, checked as far as can be done
without a container engine: against the Compose Specification and Kubernetes JSON schemas, and
against the settings the service actually reads."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from django.core.management import get_commands
from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser

from labdropbox.tracing import OTLP_ENDPOINT_VARIABLES
from testing.servers import PROJECT_DIR

K8S_DIR = PROJECT_DIR / "deploy" / "k8s"
# The Kubernetes manifests: the flavours, and nginx (a kustomization of its own beside its config).
MANIFEST_DIRS = [K8S_DIR, PROJECT_DIR / "deploy" / "nginx"]
KUBERNETES_VERSION = "1.31.0"
# Not Kubernetes API objects, or defined by a CRD the bundled schemas cannot know: skipped by
# name, so that nothing else is ever skipped silently.
NOT_IN_THE_KUBERNETES_SCHEMAS = {
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
    ("pingcap.com/v1alpha1", "TidbCluster"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
# The documented settings that the compose stack must set for the app.
STACK_VARIABLES = {
    "SERVICE_PORT", "DATA_DIR", "CHUNK_SIZE_MB", "READ_CONCURRENCY", "UPLOAD_CONCURRENCY",
    "MAX_UPLOAD_MB", "MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_BUCKET",
    "MINIO_SECURE", "TIDB_HOST", "TIDB_PORT", "TIDB_USER", "TIDB_PASSWORD", "TIDB_DATABASE",
    "DB_ENGINE", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "CACHE_TTL_SECONDS", "JAEGER_ENDPOINT",
    "OTEL_SERVICE_NAME", "JAEGER_UI_URL", "TRACE_RECORDER_KEEP", "API_TOKEN", "SECRET_KEY",
    "DEBUG", "ALLOWED_HOSTS", "API_OPEN",
}  # fmt: skip


def variables_read() -> set[str]:
    """Every environment variable the settings, the data folder and the gunicorn config read."""
    sources = [
        PROJECT_DIR / "labdropbox" / "settings.py",
        PROJECT_DIR / "labdropbox" / "data_dir.py",
        PROJECT_DIR / "deploy" / "gunicorn.conf.py",
    ]
    names = set()
    for source in sources:
        names |= set(re.findall(r"env_\w+\(\s*[\"']([A-Z0-9_]+)[\"']", source.read_text()))
    return names | set(OTLP_ENDPOINT_VARIABLES)


# --- docker-compose.yml --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    """The Compose Specification's JSON schema, as shipped in docker-compose 1.29.2 on PyPI
    (compose/config/compose_spec.json), fetched once into the virtualenv."""
    cached = Path(sys.prefix) / "share" / "labdropbox" / "compose_spec.json"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        download = ["pip", "download", "-q", "--no-deps", "--dest", str(cached.parent)]
        subprocess.run([sys.executable, "-m", *download, "docker-compose==1.29.2"], check=True)
        (wheel,) = cached.parent.glob("docker_compose-1.29.2-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            cached.write_bytes(archive.read("compose/config/compose_spec.json"))
    return json.loads(cached.read_text())


def test_compose_file_follows_the_compose_specification(compose, compose_schema):
    validator = jsonschema.Draft201909Validator(compose_schema)

    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose)]

    assert errors == []
    broken = {**compose, "services": {"app": {"image": "x", "depends_on": {"db": {}}}}}
    assert list(validator.iter_errors(broken))  # the schema does reject what is wrong


def test_compose_runs_the_whole_stack_on_pinned_images(compose):
    services = compose["services"]

    assert {"minio", "tidb", "redis", "jaeger", "migrate", "app"} <= set(services)
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"
    assert "--store=unistore" in services["tidb"]["command"]
    ports = {port for service in services.values() for port in service.get("ports", [])}
    for port in ("8080:8080", "9000:9000", "9001:9001", "4000:4000", "16686:16686", "4318:4318"):
        assert port in ports


def test_compose_starts_things_in_order_with_health_checks(compose):
    services = compose["services"]

    assert services["app"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }
    assert services["app"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"]["minio"] == {"condition": "service_healthy"}
    for name in ("minio", "redis"):
        assert services[name]["healthcheck"]["test"], name
    migrate = " ".join(services["migrate"]["command"])
    for command in ("ensure_database", "migrate", "ensure_bucket"):
        assert f"manage.py {command}" in migrate
        assert command in get_commands()
    named = set(compose["volumes"])
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            # A named volume, or a file of the repository mounted read-only.
            assert source in named or (
                (PROJECT_DIR / source).is_file() and volume.endswith(":ro")
            ), volume
    assert services["proxy"]["depends_on"]["app"] == {"condition": "service_healthy"}


def test_compose_sets_every_documented_setting_and_only_settings_the_service_reads(compose):
    app = compose["services"]["app"]["environment"]
    migrate = compose["services"]["migrate"]["environment"]

    assert app == migrate
    assert set(app) <= variables_read(), set(app) - variables_read()
    assert set(app) >= STACK_VARIABLES, STACK_VARIABLES - set(app)
    assert app["MINIO_ENDPOINT"] == "minio:9000"
    assert (app["TIDB_HOST"], app["TIDB_PORT"], app["DB_ENGINE"]) == ("tidb", "4000", "tidb")
    assert (app["REDIS_HOST"], app["JAEGER_ENDPOINT"]) == ("redis", "http://jaeger:4318")


def test_compose_and_kubernetes_ship_a_closed_api(compose):
    config = by_kind("ConfigMap", "labdropbox-config")["data"]

    assert compose["services"]["app"]["environment"]["API_OPEN"] == "false"
    assert config["API_OPEN"] == "false"


# --- Kubernetes --------------------------------------------------------------------------------


def manifests() -> list[tuple[Path, dict]]:
    return [
        (path, document)
        for folder in MANIFEST_DIRS
        for path in sorted(folder.rglob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def by_kind(kind: str, name: str) -> dict:
    (found,) = [d for _, d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize(
    ("path", "document"),
    manifests(),
    ids=[f"{p.relative_to(PROJECT_DIR / 'deploy')}:{d['kind']}" for p, d in manifests()],
)
def test_manifest_validates_against_the_kubernetes_schemas(path, document):
    kind = (document["apiVersion"], document["kind"])
    if kind in NOT_IN_THE_KUBERNETES_SCHEMAS:
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        return  # and nothing else is let through this way
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_kubernetes_validator_rejects_a_broken_manifest():
    deployment = by_kind("Deployment", "labdropbox-app")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}  # a typo

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomizations_list_files_that_exist():
    for folder in MANIFEST_DIRS:
        for kustomization in folder.rglob("kustomization.yaml"):
            spec = yaml.safe_load(kustomization.read_text())
            generated = [
                entry.partition("=")[2] or entry
                for generator in spec.get("configMapGenerator", [])
                for entry in generator["files"]
            ]
            for resource in spec["resources"] + generated:
                assert (kustomization.parent / resource).exists(), f"{kustomization}: {resource}"


def test_app_deployment_is_replicated_probed_bounded_and_unprivileged():
    deployment = by_kind("Deployment", "labdropbox-app")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    assert deployment["spec"]["replicas"] >= 2
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert (
        by_kind("HorizontalPodAutoscaler", "labdropbox-app")["spec"]["scaleTargetRef"]["name"]
        == "labdropbox-app"
    )
    job = by_kind("Job", "labdropbox-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert "manage.py migrate" in " ".join(job["args"])


def test_config_and_secret_hold_only_settings_the_service_reads():
    config = by_kind("ConfigMap", "labdropbox-config")["data"]
    secret = by_kind("Secret", "labdropbox-secrets")["stringData"]

    assert set(config) | set(secret) <= variables_read()
    assert (set(config) | set(secret)) >= STACK_VARIABLES


def test_tidb_operator_flavour_points_the_app_at_its_cluster():
    cluster = by_kind("TidbCluster", "labdropbox-tidb")["spec"]
    kustomization = yaml.safe_load((K8S_DIR / "tidb-operator" / "kustomization.yaml").read_text())

    assert (cluster["pd"]["replicas"], cluster["tikv"]["replicas"]) == (3, 3)
    assert cluster["tidb"]["replicas"] == 2
    (patch,) = yaml.safe_load(kustomization["patches"][0]["patch"])
    assert patch == {"op": "replace", "path": "/data/TIDB_HOST", "value": "labdropbox-tidb-tidb"}


# --- Dockerfile ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(path=str(PROJECT_DIR / "Dockerfile"))
    return parser


def instructions(dockerfile, name: str) -> list[str]:
    return [item["value"] for item in dockerfile.structure if item["instruction"] == name]


def test_image_is_multi_stage_with_mysqlclient_built_apart(dockerfile):
    stages = instructions(dockerfile, "FROM")
    runs = instructions(dockerfile, "RUN")

    assert len(stages) == 2 and stages[0].endswith(" AS build")
    assert all(":latest" not in stage and ":" in stage for stage in stages)
    assert "libmariadb-dev" in runs[0] and "requirements/mysql.txt" in runs[1]
    assert "libmariadb3" in runs[2] and "libmariadb-dev" not in runs[2]
    assert "requirements/dev.txt" not in dockerfile.content


def test_image_runs_the_shared_gunicorn_config_as_a_user_with_a_healthcheck(dockerfile):
    (command,) = instructions(dockerfile, "CMD")
    (healthcheck,) = instructions(dockerfile, "HEALTHCHECK")

    assert json.loads(command) == ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
    assert "gunicorn -c deploy/gunicorn.conf.py" in (PROJECT_DIR / "Makefile").read_text()
    assert instructions(dockerfile, "USER") == ["labdropbox"]
    assert "/health" in healthcheck
    assert any("collectstatic" in run for run in instructions(dockerfile, "RUN"))


def image_context() -> set[str]:
    """The files `docker build .` sends, as the Docker client applies .dockerignore."""
    lines = (PROJECT_DIR / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return set(exclude_paths(str(PROJECT_DIR), patterns))


def test_the_image_context_holds_the_service_and_no_test_code_or_local_state():
    context = image_context()
    parts = {part for path in context for part in Path(path).parts}
    top = {path for path in context if "/" not in path}

    assert {
        "manage.py",
        "labdropbox",
        "files",
        "accounts",
        "traces",
        "metrics",
        "dav",
        "web",
    } <= top
    assert "deploy/gunicorn.conf.py" in context and "requirements/base.txt" in context
    assert not parts & {"tests", "testing", "bench", "node_modules", ".git", ".venv", "var"}
    assert not any(
        path.endswith((".pyc", "conftest.py", "requirements/dev.txt")) for path in context
    )
