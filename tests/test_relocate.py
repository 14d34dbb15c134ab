"""`python.source: "local"`: a pyenv prefix copied, made relocatable, and packed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from runenv.build.interpreter.relocate import SYSTEM_LIBS, TRAMPOLINE, rewrite_shebangs
from runenv.platforms import host_platform_key
from tests.helpers.index import uv_env
from tests.helpers.pbs import VERSION, stage_host_prefix

LOCAL = next(
    (
        Path(f"/root/.pyenv/versions/{v}")
        for v in ("3.12.1", "3.10.13")
        if Path(f"/root/.pyenv/versions/{v}/bin").is_dir()
    ),
    None,
)
needs_local = pytest.mark.skipif(LOCAL is None or not sys.platform.startswith("linux"), reason="no pyenv prefix here")


def test_system_libraries_are_never_bundled() -> None:
    for name in (
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "ld-linux-x86-64.so.2",
        "libutil.so.1",
        "libcrypt.so.1",
        "librt.so.1",
        "libgcc_s.so.1",
        "libstdc++.so.6",
        "linux-vdso.so.1",
    ):
        assert SYSTEM_LIBS.match(name), name
    for name in ("libssl.so.3", "libcrypto.so.3", "libffi.so.8", "libsqlite3.so.0", "libz.so.1", "libcrypto.so"):
        assert not SYSTEM_LIBS.match(name), name


def test_rewritten_shebang_runs_the_interpreter_beside_the_script(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3.x").symlink_to(sys.executable)
    script = bindir / "hello"
    script.write_text("#!/build/machine/bin/python3.x\nimport sys\nprint('hello from', sys.argv[0], sys.argv[1:])\n")
    script.chmod(0o755)
    (bindir / "shell").write_text("#!/bin/sh\necho python\n")
    assert rewrite_shebangs(bindir, "python3.x") == ["hello"]
    assert script.read_text().startswith(TRAMPOLINE.format(exe="python3.x"))
    moved = tmp_path / "moved" / "bin"
    shutil.copytree(bindir, moved, symlinks=True)
    shutil.rmtree(bindir)
    proc = subprocess.run([str(moved / "hello"), "a b", "c"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"hello from {moved / 'hello'} ['a b', 'c']"
    assert (moved / "shell").read_text() == "#!/bin/sh\necho python\n"


def readelf_runpath(path: Path) -> str:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return next(
        (line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "RUNPATH" in line or "RPATH" in line), ""
    )


@needs_local
def test_local_prefix_is_copied_relocated_and_packed(make_workspace, run_cli, tmp_path: Path) -> None:
    assert LOCAL is not None
    version = LOCAL.name
    minor = ".".join(version.split(".")[:2])
    # Only the interpreter is under test here: no distutils shim, so nothing needs an index.
    ws = make_workspace(
        runtimes={version: {"python": {"source": "local", "path": str(LOCAL)}, "build": {"distutilsShim": False}}}
    )
    result = run_cli("-w", ws, "-v", "build", version, "-o", "json")
    assert result.code == 0, result.stderr
    ran = re.compile(r"ran: \S*patchelf --set-rpath .* on \d+ ELF files of ")  # -v and the build log say what ran
    assert ran.search(result.stderr), result.stderr
    assert any(ran.search(log.read_text()) for log in (ws / ".runenv" / "logs").glob("*.log"))
    tarball = Path(result.json()[0]["path"])
    stem = f"python-{version}-linux-x64"
    assert tarball.name == f"{stem}.tar.gz"
    manifest = (ws / "dist" / f"{stem}.manifest.toml").read_text()
    assert 'source = "local"' in manifest and f'path = "{LOCAL}"' in manifest

    moved = tmp_path / "unpacked"
    moved.mkdir()
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        tar.extractall(moved)
    assert not any("/site-packages/" in n and not n.endswith("README.txt") for n in names)
    prefix = moved / stem
    assert readelf_runpath(prefix / "bin" / f"python{minor}") == "$ORIGIN/../lib"
    for lib in (prefix / "lib").glob("libpython*.so.*"):
        assert readelf_runpath(lib) in ("$ORIGIN", "")
    env = {"PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [str(prefix / "bin" / "python3"), "-c", "import sys, ssl, sqlite3; print(sys.version.split()[0], sys.prefix)"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [version, str(prefix)]
    pydoc = prefix / "bin" / f"pydoc{minor}"
    assert pydoc.read_text().startswith("#!/bin/sh\n")
    proc = subprocess.run([str(pydoc), "math"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "math" in proc.stdout, proc.stderr


@needs_local
def test_local_source_only_builds_for_the_host(make_workspace, run_cli) -> None:
    assert LOCAL is not None
    ws = make_workspace(runtimes={LOCAL.name: {"python": {"source": "local", "path": str(LOCAL)}}})
    result = run_cli("-w", ws, "build", LOCAL.name, "--platform", "windows-x64")
    assert result.code == 2
    assert "only be built for the host platform" in result.stderr
    assert not (ws / "dist").exists()


def test_local_source_needs_an_existing_path(make_workspace, run_cli, tmp_path: Path) -> None:
    ws = make_workspace(runtimes={"3.12.1": {"python": {"source": "local", "path": str(tmp_path / "nope")}}})
    result = run_cli("-w", ws, "build", "3.12.1")
    assert result.code == 2
    assert "python-3.12.1/config.json: python.path" in result.stderr and "is not a directory" in result.stderr
    assert not (ws / "dist").exists() and not (ws / ".runenv").exists()


@pytest.mark.parametrize("prefix", ["empty", "other-version"])
def test_a_bad_local_prefix_is_refused_before_anything_is_written(
    package_index, make_workspace, run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    uv_env(monkeypatch, tmp_path, package_index.simple)
    if prefix == "empty":
        path, version = tmp_path / "not-a-python", "3.12.1"
        (path / "bin").mkdir(parents=True)
    else:
        if LOCAL is None:
            pytest.skip("no pyenv prefix here")
        major, minor, patch = LOCAL.name.split(".")
        path, version = LOCAL, f"{major}.{minor}.{int(patch) + 1}"  # same bin/pythonX.Y, another version
    config = {"python": {"source": "local", "path": str(path)}, "packages": {"dependencies": ["tool-a"]}}
    ws = make_workspace(runtimes={version: config})
    for args in (["build", version], ["config", "validate"]):
        result = run_cli("-w", ws, *args)
        assert result.code == 2, (args, result.stderr)
        assert f"python-{version}/config.json: python.path" in result.stderr
    assert not (ws / "dist").exists() and not (ws / ".runenv").exists()
    assert list((ws / f"python-{version}").iterdir()) == [ws / f"python-{version}" / "config.json"]


@needs_local
def test_local_runtime_counts_for_the_host_only(make_workspace, run_cli) -> None:
    """validate, check and build --all-platforms treat a local runtime as host-only, with a note, not a failure."""
    assert LOCAL is not None
    host = host_platform_key()
    ws = make_workspace(
        runtimes={LOCAL.name: {"python": {"source": "local", "path": str(LOCAL)}, "build": {"distutilsShim": False}}}
    )
    validate = run_cli("-w", ws, "config", "validate")
    assert validate.code == 0, validate.stderr
    assert f"valid on {host}: {LOCAL.name}" in validate.stdout
    assert f"only the host platform ({host}) counts" in validate.stderr
    data = run_cli("-w", ws, "-o", "json", "config", "validate").json()
    assert data["runtimes"] == [{"runtime": LOCAL.name, "valid": True, "platforms": [host]}]
    config = {"python": {"source": "local", "path": str(LOCAL)}, "build": {"platforms": [host]}}
    only_host = make_workspace(root=ws.parent / "only-host", runtimes={LOCAL.name: config})
    validated = run_cli("-w", only_host, "config", "validate")  # nothing left out: no note, still the host only
    assert validated.code == 0 and f"valid on {host}: {LOCAL.name}" in validated.stdout, validated.stdout

    missing = run_cli("-w", ws, "-o", "json", "check")
    assert missing.code == 1
    assert [r["platform"] for r in missing.json()["artifacts"]] == [host]

    built = run_cli("-w", ws, "-o", "json", "build", LOCAL.name, "--all-platforms")
    assert built.code == 0, built.stderr
    assert [a["platform"] for a in built.json()] == [host]
    assert "uses a local interpreter" in built.stderr
    check = run_cli("-w", ws, "check")
    assert check.code == 0, check.stdout + check.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="local interpreters need a Linux host")
def test_a_local_prefix_of_another_version_names_python_path_not_a_release(make_workspace, run_cli, tmp_path) -> None:
    """The mismatch hint is about the prefix or the directory name: a local source has no release or archive."""
    prefix = stage_host_prefix(tmp_path / "prefix")  # a real prefix of the running interpreter
    major, minor, patch = VERSION.split(".")
    wanted = f"{major}.{minor}.{int(patch) + 1}"
    ws = make_workspace(runtimes={wanted: {"python": {"source": "local", "path": str(prefix)}}})
    for args in (("config", "validate"), ("build", wanted)):
        result = run_cli("-w", ws, *args)
        assert result.code == 2, (args, result.stderr)
        assert f"holds Python {VERSION}, but runtime {wanted} needs {wanted}" in result.stderr
        hint = f"hint: point python.path at a Python {wanted} prefix, or name the runtime directory python-{VERSION}"
        assert hint in result.stderr
        assert "python.release" not in result.stderr and "archive" not in result.stderr
    assert not (ws / "dist").exists()
