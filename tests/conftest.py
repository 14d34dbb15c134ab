"""Shared fixtures: a sandboxed HOME and cache, workspaces written from dicts, the CLI run in-process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("tests.helpers")  # conftest imports a helper before pytest loads it as a plugin

from runenv.cli import main  # noqa: E402
from tests.helpers.index import uv_env  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MACHINE_ENV = dict(os.environ)  # before any sandboxing: what the machine's uv/pip are configured with

pytest_plugins = [
    "tests.helpers.pbs",  # PBS mirror fixtures: pbs_archives, pbs_mirror, build_workspace
    "tests.helpers.filesystems",  # default_scratch, tmpdir_in_ram: scratch and temp dir on two file systems
    "tests.helpers.index",  # package_index (the session's loopback index), index (the only one uv sees), private_index
    "tests.helpers.dist",  # dist_workspace: stub artifacts in dist/
    "tests.helpers.runtime_prefix",  # runtime_template, runtime_prefix, runtime_tarball, runtime_workspace
    "tests.helpers.publish_servers",  # nginx, s3_server, registry
]


@pytest.fixture(autouse=True)
def sandbox(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HOME, RUNENV_CACHE_DIR, RUNENV_SCRATCH_DIR and TMPDIR; nothing touches the real ones."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(home / "runenv-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("RUNENV_SCRATCH_DIR", str(home / "scratch"))  # not the machine's RAM disk
    # runenv's own temp dirs land in the test's temp dir, where a test can see what was left.
    (home / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(home / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile caches the first temp dir it found
    # No test reaches the internet: uv and pip see only an unreachable loopback index unless a test
    # points them at its own (tests.helpers.index.uv_env).
    uv_env(monkeypatch, home, "http://127.0.0.1:9/no-index-in-tests/simple")
    for var in (
        "RUNENV_PBS_MIRROR",
        "RUNENV_PBS_CATALOGUE",
        "RUNENV_PUBLISH_TARGET",
        "RUNENV_DISABLE_DISTUTILS_SHIM",
        "SOURCE_DATE_EPOCH",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error(self) -> str:
        """stderr from its first `error:` line on: what a failure says after the progress lines of the steps done."""
        at = re.search(r"^error: ", self.stderr, re.MULTILINE)
        return self.stderr[at.start() :] if at else ""


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `runenv ARGS…` in-process and capture exit code, stdout and stderr."""

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


def runenv_command(
    *args: str | Path, env: dict[str, str] | None = None, python: Path | None = None
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run the real `python -m runenv` of this checkout (with `python`: that one)."""
    full_env = dict(os.environ if env is None else env)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    return [str(python or sys.executable), "-m", "runenv", *map(str, args)], full_env


def run_runenv(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None, python: Path | None = None
) -> CliResult:
    """Run the real `python -m runenv` (of this checkout) in a subprocess."""
    argv, full_env = runenv_command(*args, env=env, python=python)
    proc = subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def start_runenv(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start the real `python -m runenv` in a subprocess (to signal it mid-way); stdout and stderr are piped."""
    argv, full_env = runenv_command(*args, env=env)
    return subprocess.Popen(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) if not isinstance(data, str) else data)
    return path


@pytest.fixture
def make_workspace(tmp_path: Path) -> Callable[..., Path]:
    """Write a workspace: `make_workspace(shared={...}, runtimes={"3.12.10": {...}})` → its root."""

    def make(
        shared: dict | str | None = None, runtimes: dict[str, dict | str] | None = None, root: Path | None = None
    ) -> Path:
        ws = root or tmp_path / "ws"
        ws.mkdir(parents=True, exist_ok=True)
        shared = {} if shared is None else shared
        if isinstance(shared, dict) and "python" not in shared:
            shared = {"python": {"release": "20250517"}, **shared}  # a buildable default; tests may override
        write_json(ws / "shared-config.json", shared)
        for name, cfg in (runtimes if runtimes is not None else {"3.12.10": {}}).items():
            write_json(ws / f"python-{name}" / "config.json", cfg)
        return ws

    return make
