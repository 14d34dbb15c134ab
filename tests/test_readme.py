"""The README's recipes run as written: the offline mirror recipe, its JSON examples, and the test command CI uses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runenv.platforms import host_platform_key
from tests.conftest import REPO
from tests.helpers.pbs import RELEASE, VERSION, PbsMirror

README = REPO / "README.md"
HOST = "linux-x64"


def marked_block(name: str) -> str:
    """The shell commands between `<!-- readme-test: NAME -->` and `<!-- /readme-test -->`, fences removed."""
    text = README.read_text()
    match = re.search(rf"<!-- readme-test: {name} -->\n```sh\n(.*?)```\n<!-- /readme-test -->", text, re.S)
    assert match, f"README has no marked block {name!r}"
    return match.group(1)


def json_blocks() -> list[str]:
    return re.findall(r"```json\n(.*?)```", README.read_text(), re.S)


def runenv_on_path(tmp_path: Path) -> Path:
    """A directory holding a `runenv` command that runs this checkout (what `pip install` puts on PATH)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "runenv"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" -m runenv "$@"\n')
    shim.chmod(0o755)
    return bindir


@pytest.mark.skipif(host_platform_key() != HOST, reason="the recipe builds linux-x64 as its host platform")
def test_the_offline_mirror_recipe_runs_as_written(pbs_mirror: PbsMirror, tmp_path: Path) -> None:
    """A reader with a PBS mirror and no GitHub: the README's block, unchanged, builds and checks a runtime."""
    recipe = marked_block("offline-mirror")
    assert "RUNENV_PBS_MIRROR" in recipe and "runenv new" in recipe and "--release" in recipe
    env = dict(os.environ)  # the sandbox: temp HOME, cache, scratch and TMPDIR, no reachable index
    env.update(
        PATH=f"{runenv_on_path(tmp_path)}{os.pathsep}{env['PATH']}",
        RUNENV_PBS_MIRROR=pbs_mirror.url,  # what the reader sets: their mirror, a version and release it holds
        PY=VERSION,
        RELEASE=RELEASE,
    )
    home = tmp_path / "reader"
    home.mkdir()
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", recipe], cwd=home, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ws = home / "my-runtimes"
    for platform in (HOST, "windows-x64"):
        assert (ws / "dist" / f"python-{VERSION}-{platform}.tar.gz").is_file()
        assert (ws / "dist" / f"python-{VERSION}-{platform}.tar.gz.sha256").is_file()
    assert json.loads((ws / f"python-{VERSION}" / "config.json").read_text())["python"]["release"] == RELEASE
    assert re.search(rf"{VERSION}\s+{HOST}\s.*fresh", proc.stdout), proc.stdout  # `runenv check`
    assert re.search(rf"{VERSION}\s+windows-x64\s.*fresh", proc.stdout), proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith(VERSION)  # the runtime's own `python -c`
    assert pbs_mirror.server.count("*cpython-*") == 2  # one archive per platform


def test_every_json_example_parses_and_the_config_reference_validates(run_cli, tmp_path: Path) -> None:
    """Config examples are copied as they are: each must be JSON, and the reference's pair a valid workspace."""
    blocks = json_blocks()
    assert len(blocks) >= 4
    for block in blocks:
        json.loads(block)
    shared = next(b for b in blocks if '"registries"' in b and '"packages"' in b)
    runtime = next(b for b in blocks if b.startswith('{"packages"'))
    ws = tmp_path / "ws"
    (ws / "python-3.12.10").mkdir(parents=True)
    (ws / "shared-config.json").write_text(shared)
    (ws / "python-3.12.10" / "config.json").write_text(runtime)
    (ws / "assets").mkdir()
    (ws / "assets" / "x.py").write_text("X = 1\n")  # the example's copyFiles source
    result = run_cli("-w", ws, "config", "validate")
    assert result.code == 0, result.stderr
    assert "valid on all 5 platforms: 3.12.10" in result.stdout


def test_the_readme_states_the_test_command_ci_runs() -> None:
    command = "python3 -m pytest -q"
    assert f"```sh\n{command}\n```" in README.read_text()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == command


def _local_prefix() -> Path | None:
    """The prefix of the interpreter running the tests, when it is a CPython prefix of its own (pyenv), not /usr."""
    prefix = Path(sys.base_prefix)
    return prefix if (prefix / "bin" / "python3").exists() and prefix != Path("/usr") else None


@pytest.mark.skipif(host_platform_key() != HOST, reason="the recipe builds linux-x64 as its host platform")
@pytest.mark.skipif(_local_prefix() is None, reason="the running interpreter is the system's (/usr), not a prefix")
def test_the_local_interpreter_recipe_runs_as_written(tmp_path: Path) -> None:
    """A reader with an installed CPython and no GitHub: the README's block, unchanged, in an empty directory."""
    recipe = marked_block("local-interpreter")
    assert '"source": "local"' in recipe and "shared-config.json" in recipe
    prefix = _local_prefix()
    env = dict(os.environ)
    env.update(PATH=f"{runenv_on_path(tmp_path)}{os.pathsep}{env['PATH']}", PREFIX=str(prefix))
    home = tmp_path / "reader"
    home.mkdir()
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", recipe], cwd=home, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = ".".join(map(str, sys.version_info[:3]))
    tarball = home / "my-local-runtimes" / "dist" / f"python-{version}-{HOST}.tar.gz"
    assert tarball.is_file() and tarball.with_name(tarball.name + ".sha256").is_file()
    assert re.search(rf"{version}\s+{HOST}\s.*fresh", proc.stdout), proc.stdout  # `runenv check`
    assert "local interpreter" in proc.stderr  # check's note: the host platform only
    assert proc.stdout.rstrip().splitlines()[-1].startswith(version)  # the runtime's own `python -c`
