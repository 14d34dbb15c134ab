"""Real git repositories made by the tests, served over smart HTTP on loopback (`git http-backend`).

`make_project(repos, name, …)` commits a small setuptools project (a bare copy beside it is what the
server exports); `GitServer(repos)` serves `http://127.0.0.1:<port>/<name>.git` with a request log.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "runenv tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "runenv tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
    "GIT_AUTHOR_DATE": "2025-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2025-01-01T00:00:00Z",
}


def git(*args: str, cwd: Path) -> str:
    """Run git in `cwd` with a fixed identity and date; returns stdout."""
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@dataclass(frozen=True)
class GitProject:
    """A committed project: `bare` is the exported repository, `commit` the full id, `short` its first 7 digits."""

    name: str
    bare: Path
    commit: str
    tag: str
    branch: str

    @property
    def short(self) -> str:
        return self.commit[:7]

    def file_url(self) -> str:
        return self.bare.as_uri()


_PLATFORM_WHEEL = """
from setuptools.dist import Distribution
Distribution.has_ext_modules = lambda self: True  # a platform-specific wheel without a compiler
"""


def make_project(
    repos: Path,
    name: str,
    version: str,
    module: str,
    *,
    repo: str | None = None,
    static: bool = True,
    platform_wheel: bool = False,
    body: str = "VALUE = 'from git'\n",
) -> GitProject:
    """Commit a setuptools project `name` (module `module`) and export it as `repos/<repo or name>.git`.

    `static`: PEP 621 metadata in pyproject.toml; otherwise it lives in setup.py (reading it needs a build).
    `platform_wheel`: the wheel is tagged for the building interpreter and platform (as with C extensions).
    The commit is tagged `v<version>` and also on branch `release`.
    """
    work = repos / f"{repo or name}-work"
    (work / module).mkdir(parents=True)
    (work / module / "__init__.py").write_text(body)
    build_system = '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    if static:
        project = f'\n[project]\nname = "{name}"\nversion = "{version}"\n\n[tool.setuptools]\npackages = ["{module}"]\n'
        (work / "pyproject.toml").write_text(build_system + project)
    else:
        (work / "pyproject.toml").write_text(build_system)
    if not static or platform_wheel:
        setup = f"setup(name={name!r}, version={version!r}, packages=[{module!r}])" if not static else "setup()"
        prelude = _PLATFORM_WHEEL if platform_wheel else ""
        (work / "setup.py").write_text(f"from setuptools import setup\n{prelude}\n{setup}\n")
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", f"{name} {version}", cwd=work)
    git("tag", f"v{version}", cwd=work)
    git("branch", "release", cwd=work)
    bare = repos / f"{repo or name}.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=repos)
    shutil.rmtree(work)
    return GitProject(name, bare, git("rev-parse", "HEAD", cwd=bare), f"v{version}", "release")


class _Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    requests: list[str]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._backend()

    def do_POST(self) -> None:  # noqa: N802
        self._backend()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()
        return b"".join(chunks)

    def _backend(self) -> None:
        path, _, query = self.path.partition("?")
        self.requests.append(self.path)
        body = self._body()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": urllib.parse.unquote(path),
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.split(b"\r\n"):
            key, _, value = line.decode("latin-1").partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class GitServer:
    """Serves the bare repositories under `root` at `http://127.0.0.1:<port>/<name>.git`; a context manager."""

    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        handler = type("Handler", (_Handler,), {"root": root, "requests": self.requests})
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> GitServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
