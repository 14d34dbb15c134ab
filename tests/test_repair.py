"""Wheels built from sdists on Linux go through auditwheel: a host library the extension links is bundled and the
wheel is tagged for `build.manylinux`; one needing a newer glibc than the floor fails the build at verify."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runenv.platforms import host_platform_key
from tests.helpers.built import dist_files, leftovers, read_manifest, unpack
from tests.helpers.http import StaticServer
from tests.helpers.index import machine_wheel, uv_env, write_simple_index
from tests.helpers.native import NEW_GLIBC_CALL, build_library, ext_sdist
from tests.helpers.pbs import VERSION

pytestmark = pytest.mark.skipif(host_platform_key() != "linux-x64", reason="auditwheel repairs Linux wheels")
HOST = "linux-x64"
STEM = f"python-{VERSION}-{HOST}"
SOURCE_ONLY = {"resolution": {"allowSourceList": ["hostlib", "newsym"]}}


@pytest.fixture(scope="module")
def host_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared library outside any runtime, as a system library an sdist links against would be."""
    return build_library(tmp_path_factory.mktemp("host-lib"), "libhostlib.so.1")


@pytest.fixture(scope="module")
def ext_index(tmp_path_factory: pytest.TempPathFactory, host_lib: Path) -> Iterator[str]:
    root = tmp_path_factory.mktemp("ext-index")
    files = root / "files"
    files.mkdir()
    backend = [machine_wheel("setuptools"), machine_wheel("wheel")]  # setuptools < 70.1 asks for `wheel` too
    if None in backend:
        pytest.skip("no setuptools and wheel wheels on this machine to build sdists offline")
    artifacts = [
        ext_sdist(files, "hostlib", link=host_lib),
        ext_sdist(files, "newsym", calls=NEW_GLIBC_CALL),
        *(Path(shutil.copy(w, files)) for w in backend if w is not None),
    ]
    write_simple_index(root, artifacts)
    with StaticServer(root) as server:
        yield f"{server.url}/simple"


@pytest.fixture
def ext_only_index(ext_index: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The extension index as the only one uv and pip see in this test."""
    uv_env(monkeypatch, tmp_path, ext_index)
    return ext_index


def _wheel_entry(ws: Path, name: str) -> dict:
    [entry] = [p for p in read_manifest(ws, STEM)["packages"] if p["name"] == name]
    return entry


def test_a_host_library_an_sdist_links_is_bundled_and_the_runtime_imports_it_without_the_host_copy(
    ext_only_index, build_workspace, run_cli, host_lib, tmp_path
):
    packages = {"dependencies": ["hostlib"], **SOURCE_ONLY}
    ws = build_workspace(runtimes={VERSION: {"packages": packages, "build": {"platforms": [HOST]}}})
    built = run_cli("-w", ws, "build", VERSION)
    assert built.code == 0, built.stderr
    entry = _wheel_entry(ws, "hostlib")
    assert entry["how"] == "built-from-sdist" and entry["wheel"].endswith("-manylinux_2_28_x86_64.whl"), entry

    prefix = unpack(ws, STEM, tmp_path / "unpacked")
    site = next(prefix.glob("lib/python*/site-packages"))
    [bundled] = (site / "hostlib.libs").glob("libhostlib-*.so.1")
    moved = host_lib.parent.with_name("moved-away")
    host_lib.parent.rename(moved)  # the host's copy is gone: only the bundled one can load
    try:
        probe = [str(prefix / "bin" / "python3"), "-c", "import hostlib._ext as e; print(e.answer())"]
        out = subprocess.run(probe, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    finally:
        moved.rename(host_lib.parent)
    assert out.returncode == 0 and out.stdout.strip() == "42", out.stderr
    ldd = subprocess.run(["ldd", str(next(site.glob("hostlib/_ext*.so")))], capture_output=True, text=True)
    assert f"hostlib.libs/{bundled.name}" in ldd.stdout, ldd.stdout


def test_a_built_wheel_needing_a_glibc_above_the_floor_fails_the_build_naming_the_symbol_until_the_floor_allows_it(
    ext_only_index, build_workspace, run_cli
):
    packages = {"dependencies": ["newsym"], **SOURCE_ONLY}
    ws = build_workspace(runtimes={VERSION: {"packages": packages, "build": {"platforms": [HOST]}}})
    failed = run_cli("-w", ws, "build", VERSION)
    assert failed.code == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    [line] = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert "of distribution 'newsym'" in line and "newsym/_ext" in line and HOST in line, line
    assert "GLIBC_2.34 from libc.so.6" in line and "manylinux_2_28" in line, line
    assert "auditwheel" in failed.stderr and "too-recent versioned symbols" in failed.stderr  # the repair's warning
    assert dist_files(ws) == [] and leftovers(ws) == []

    raised = {"packages": packages, "build": {"platforms": [HOST], "manylinux": "2_34"}}
    ws = build_workspace(runtimes={VERSION: raised}, root=ws.parent / "ws-2_34")
    passed = run_cli("-w", ws, "build", VERSION)
    assert passed.code == 0, passed.stderr
    assert _wheel_entry(ws, "newsym")["wheel"].endswith("-manylinux_2_34_x86_64.whl")
