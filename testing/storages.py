"""The servers behind CHUNK_STORAGE=django in the tests, on loopback ports: Azurite (Microsoft's
Azure Storage emulator, from npm) and Debian's OpenSSH server as an SFTP server with a
throwaway key; django-storages' S3Storage talks to the moto server of testing/servers.py.

`django_storage(kind, …)` is the STORAGES["chunks"] entry that puts chunk objects in a fresh
container (bucket, folder) of one of them.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, cast

from testing.servers import PROJECT_DIR, S3Endpoint, free_port, stop

DJANGO_KINDS = ("django-s3", "django-azure", "django-sftp")
BACKENDS = {
    "django-s3": "storages.backends.s3.S3Storage",
    "django-azure": "storages.backends.azure_storage.AzureStorage",
    "django-sftp": "storages.backends.sftpstorage.SFTPStorage",
}
AZURITE = PROJECT_DIR / "testing" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def wait_for_port(process: subprocess.Popen, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{cast(list[str], process.args)[0]} exited with {process.returncode}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(
        f"{cast(list[str], process.args)[0]} did not listen on {port} within {timeout}s"
    )


class AzuriteServer:
    """Azurite's Blob service, keeping its data in `folder`."""

    def __init__(self, folder: Path, port: int = 0) -> None:
        if not AZURITE.exists():
            raise RuntimeError(f"{AZURITE} is missing: run `make test-tools`")
        self.port = port or free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self._log = open(folder / "azurite.log", "wb")  # noqa: SIM115  (for its lifetime)
        self.process = subprocess.Popen(
            [
                str(AZURITE),
                *("--blobHost", "127.0.0.1", "--blobPort", str(self.port)),
                *("--location", str(folder), "--silent", "--skipApiVersionCheck", "--loose"),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.process, self.port)

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT};"
        )

    def stop(self) -> None:
        # Node waits for idle keep-alive connections to close before it exits; the data is
        # thrown away anyway.
        self.process.kill()
        self.process.wait()
        self._log.close()


class SftpServer:
    """OpenSSH's sshd on a loopback port, serving SFTP to one throwaway key (as root, the only
    user a test machine is sure to have)."""

    def __init__(self, folder: Path, port: int = 0) -> None:
        self.port = port or free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.root = folder / "files"
        self.root.mkdir(exist_ok=True)
        self.key = folder / "client_key"
        host_key = folder / "host_key"
        for path in (self.key, host_key):
            if not path.exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True
                )
        (folder / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        config = folder / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    "ListenAddress 127.0.0.1",
                    f"Port {self.port}",
                    f"HostKey {host_key}",
                    f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                    f"PidFile {folder / 'sshd.pid'}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "Subsystem sftp internal-sftp",
                    "MaxStartups 100",
                    "MaxSessions 100",
                    "",
                ]
            )
        )
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # its privilege-separation folder
        self._log = open(folder / "sshd.log", "wb")  # noqa: SIM115  (for its lifetime)
        self.process = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.process, self.port)

    def stop(self) -> None:
        stop(self.process)
        self._log.close()


def django_storage(
    kind: str,
    name: str,
    *,
    s3: S3Endpoint | None = None,
    azurite: AzuriteServer | None = None,
    sftp: SftpServer | None = None,
) -> dict[str, Any]:
    """The STORAGES entry of `kind` whose objects go to bucket, container or folder `name` of
    the server given."""
    if kind == "django-s3":
        assert s3 is not None
        options: dict[str, Any] = {
            "bucket_name": name,
            "endpoint_url": f"http://127.0.0.1:{s3.port}",
            "access_key": s3.access_key,
            "secret_key": s3.secret_key,
            "region_name": "us-east-1",
            "addressing_style": "path",
        }
    elif kind == "django-azure":
        assert azurite is not None
        options = {
            "azure_container": name,
            "connection_string": azurite.connection_string,
            "timeout": 5,
        }
    elif kind == "django-sftp":
        assert sftp is not None
        options = {
            "host": "127.0.0.1",
            "root_path": str(sftp.root / name),
            "known_host_file": str(sftp.folder / "known_hosts"),
            "params": {
                "port": sftp.port,
                "username": "root",
                "key_filename": str(sftp.key),
                "look_for_keys": False,
                "allow_agent": False,
                "timeout": 5,
                "banner_timeout": 5,
                "auth_timeout": 5,
            },
        }
    else:
        raise ValueError(f"not a Django storage kind: {kind}")
    return {"BACKEND": BACKENDS[kind], "OPTIONS": options}


def on_port(config: dict[str, Any], port: int) -> dict[str, Any]:
    """The STORAGES entry `config`, reaching its server on loopback `port` instead (a fault
    proxy's, or a closed one)."""
    options = json.loads(json.dumps(config["OPTIONS"]))  # a deep copy
    if "endpoint_url" in options:
        options["endpoint_url"] = re.sub(r":\d+$", f":{port}", options["endpoint_url"])
    if "connection_string" in options:
        options["connection_string"] = re.sub(
            r"(BlobEndpoint=http://127\.0\.0\.1):\d+",
            rf"\g<1>:{port}",
            options["connection_string"],
        )
    if "params" in options:
        options["params"]["port"] = port
    return {**config, "OPTIONS": options}


def django_storage_env(config: dict[str, Any]) -> dict[str, str]:
    """The environment that gives a service the STORAGES entry `config`."""
    return {
        "CHUNK_STORAGE": "django",
        "CHUNK_STORAGE_BACKEND": config["BACKEND"],
        "CHUNK_STORAGE_OPTIONS": json.dumps(config["OPTIONS"]),
        "MINIO_ENDPOINT": "",
    }
