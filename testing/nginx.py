"""nginx on a loopback port, from Debian's package: the benchmark's static-file yardstick and the
tests' reverse proxy (deploy/nginx/labdropbox.conf.template, rendered as the image renders it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from testing.servers import PROJECT_DIR, HttpServer, free_port, stop, wait_until_healthy

PROXY_TEMPLATE = PROJECT_DIR / "deploy" / "nginx" / "labdropbox.conf.template"


def nginx_binary() -> str:
    found = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if found is None:
        raise RuntimeError("nginx is not installed (make test installs Debian's nginx-light)")
    return found


def render_template(template: str, env: Mapping[str, str]) -> str:
    """What the nginx image's entrypoint does (envsubst limited to the variables it has): only
    ${NAME} forms of defined variables are replaced; nginx's own $variables are left alone."""
    return re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), m.group(0)), template)


def main_config(folder: Path, server_blocks: str, modules: tuple[str, ...] = ()) -> str:
    """A whole nginx.conf around `server_blocks` (with dynamic `modules` loaded), keeping every
    file nginx writes in `folder`."""
    scratch = folder / "scratch"
    loads = "".join(f"load_module {module};\n" for module in modules)
    return f"""{loads}
daemon off; worker_processes 1; pid {folder}/nginx.pid; error_log {folder}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {scratch}; proxy_temp_path {scratch}; fastcgi_temp_path {scratch};
    uwsgi_temp_path {scratch}; scgi_temp_path {scratch};
    {server_blocks}
}}
"""


class NginxServer(HttpServer):
    """nginx with the given server blocks ({port} in them is replaced by its free port)."""

    def __init__(
        self,
        folder: Path,
        server_blocks: str,
        health_path: str = "/",
        modules: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "nginx.conf"
        blocks = server_blocks.replace("{port}", str(self.port))
        self.config.write_text(main_config(folder, blocks, modules))
        # Started as root, nginx's workers run unprivileged: they must be able to read these.
        for path in (folder, self.config):
            path.chmod(0o755)
        self.process = subprocess.Popen([nginx_binary(), "-c", str(self.config), "-p", str(folder)])
        wait_until_healthy(self.process, self.port, health_path)

    def stop(self) -> None:
        stop(self.process)


def proxy_server_block(upstream: str, max_upload_mb: int) -> str:
    """The project's proxy config for `upstream`, listening on {port}."""
    rendered = render_template(
        PROXY_TEMPLATE.read_text(),
        {"LABDROPBOX_UPSTREAM": upstream, "MAX_UPLOAD_MB": str(max_upload_mb)},
    )
    return rendered.replace("listen 8080;", "listen 127.0.0.1:{port};")


def check_config(folder: Path, server_blocks: str) -> subprocess.CompletedProcess:
    """`nginx -t` on a whole config around `server_blocks`."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(main_config(folder, server_blocks.replace("{port}", str(free_port()))))
    return subprocess.run(
        [nginx_binary(), "-t", "-c", str(config), "-p", str(folder)],
        capture_output=True,
        text=True,
    )
