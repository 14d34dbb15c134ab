"""Real publish targets on loopback: nginx with WebDAV and basic auth, the CNCF `docker-registry`, moto's S3."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

USER = "publisher"
PASSWORD = "s3cret-Pa55word"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port}: {log.read_text(errors='replace')[-2000:]}")


class LoopbackServer:
    """A server process of ours listening on 127.0.0.1:`port`, with its config and logs under `prefix`."""

    def __init__(self, prefix: Path, port: int) -> None:
        self.prefix = prefix
        self.port = port
        self.proc: subprocess.Popen | None = None

    def launch(self, argv: list[str], log: Path) -> None:
        with log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=out)
        wait_for_port(self.port, self.proc, log)

    def kill(self) -> None:
        """Die at once, as a crashed server would (in-flight uploads see a dropped connection)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


NGINX_CONF = """
daemon off;
master_process off;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
            dav_methods PUT DELETE MKCOL COPY MOVE;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
            client_max_body_size 0;
            auth_basic "runenv";
            auth_basic_user_file {prefix}/htpasswd;
        }}
    }}
}}
"""


class Nginx(LoopbackServer):
    """nginx serving `root` with WebDAV PUT/MKCOL/MOVE behind basic auth."""

    def __init__(self, prefix: Path, root: Path, port: int, user: str = USER, password: str = PASSWORD) -> None:
        super().__init__(prefix, port)
        self.root = root
        self.user, self.password = user, password

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/runtimes/"

    def start(self) -> Nginx:
        hashed = subprocess.run(
            ["openssl", "passwd", "-apr1", self.password], capture_output=True, text=True, check=True
        ).stdout.strip()
        (self.prefix / "htpasswd").write_text(f"{self.user}:{hashed}\n")
        user = "user root;" if os.geteuid() == 0 else ""
        conf = self.prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(user=user, prefix=self.prefix, port=self.port, root=self.root))
        log = self.prefix / "error.log"
        self.launch([shutil.which("nginx") or "nginx", "-p", str(self.prefix), "-c", str(conf), "-e", str(log)], log)
        return self


REGISTRY_CONF = """
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


class Registry(LoopbackServer):
    """The CNCF distribution registry (Debian's `docker-registry`) over plain HTTP on loopback."""

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"http://{self.host}/v2"

    def start(self) -> Registry:
        conf = self.prefix / "config.yml"
        conf.write_text(REGISTRY_CONF.format(root=self.prefix / "storage", port=self.port))
        self.launch(
            [shutil.which("docker-registry") or "docker-registry", "serve", str(conf)], self.prefix / "registry.log"
        )
        return self

    def get(self, path: str, accept: str | None = None) -> httpx.Response:
        headers = {"Accept": accept} if accept else {}
        return httpx.get(f"{self.api}/{path}", headers=headers, timeout=30)


class MotoS3(LoopbackServer):
    """moto's standalone S3-compatible server (PyPI `moto[server]`), with one bucket."""

    bucket = "runenv-test"
    key_id = "AKIAEXAMPLELOOPBACK"
    secret = "loopback-s3-Secret/Key+123"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What a publisher needs in its environment to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_REGION": "us-east-1",
            "RUNENV_S3_ENDPOINT": self.endpoint,
        }

    def start(self) -> MotoS3:
        # moto's server, each request served whole before the next, as S3 serves a conditional write;
        # -P keeps this folder (whose http.py would shadow the standard library's) off sys.path
        script = Path(__file__).with_name("moto_atomic.py")
        argv = [sys.executable, "-P", str(script), "127.0.0.1", str(self.port)]
        self.launch(argv, self.prefix / "moto.log")
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
        )

    def get(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (.ci/run installs it)")


def start_nginx(tmp_path: Path, user: str = USER, password: str = PASSWORD) -> Nginx:
    """Start nginx WebDAV with basic auth as (`user`, `password`), its files under `tmp_path/dav`."""
    _need("nginx")
    prefix = tmp_path / "nginx"
    root = tmp_path / "dav"
    for d in (prefix, root / "runtimes"):
        d.mkdir(parents=True)
    return Nginx(prefix, root, free_port(), user, password).start()


@pytest.fixture
def nginx(tmp_path: Path) -> Nginx:
    """A running nginx WebDAV server; its files are under `.root`."""
    server = start_nginx(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def s3_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MotoS3:
    """A running S3-compatible server with an empty bucket; the test's environment points at it."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed (the test extra installs it)")
    pytest.importorskip("boto3", reason="boto3 is not installed (the s3 extra installs it)")
    prefix = tmp_path / "s3"
    prefix.mkdir()
    server = MotoS3(prefix, free_port())
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """A running OCI distribution registry."""
    _need("docker-registry")
    prefix = tmp_path / "registry"
    prefix.mkdir()
    server = Registry(prefix, free_port()).start()
    yield server
    server.stop()


class HostileServer:
    """A loopback HTTP server that records every request and answers from `respond(method, path, headers)`.

    The default answer is what a careless server does: 400 with the request's Authorization header in the body.
    """

    def __init__(self, respond=None) -> None:  # type: ignore[no-untyped-def]
        import http.server
        import threading

        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.respond = respond or self.echo_auth
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers = dict(self.headers.items())
                server.seen.append((self.command, self.path, headers))
                status, extra, body = server.respond(self.command, self.path, headers)
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_HEAD = do_POST = do_MOVE = do_MKCOL = do_DELETE = handle_any  # noqa: N815

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @staticmethod
    def echo_auth(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if method == "HEAD":
            return 404, {}, b""  # nothing published yet: the upload follows
        return 400, {}, f"bad request; you sent Authorization: {headers.get('Authorization')}".encode()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def authorizations(self) -> list[str]:
        return [h["Authorization"] for _m, _p, h in self.seen if "Authorization" in h]

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
