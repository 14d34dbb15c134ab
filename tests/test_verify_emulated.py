"""linux-aarch64 runtimes verified under qemu-user: a real aarch64 CPython (Debian's) with numpy, built through
`runenv build`, whose imports (every numpy extension module) and smoke test run emulated; without an emulator
the report says only the static checks ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runenv.build.verify import VerifySettings, check_prefix
from runenv.platforms import RuntimeLayout, get_platform
from tests.helpers.aarch64 import DEBIAN_VERSION, aarch64_files, numpy_wheel, stage_debian_prefix
from tests.helpers.built import dist_files, read_manifest
from tests.helpers.http import StaticServer
from tests.helpers.index import build_wheel, uv_env, write_simple_index
from tests.helpers.pbs import make_tar_gz

ARM = get_platform("linux-aarch64")
STEM = f"python-{DEBIAN_VERSION}-linux-aarch64"


@pytest.fixture(scope="module")
def arm_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = aarch64_files()
    root = tmp_path_factory.mktemp("arm")
    return make_tar_gz(stage_debian_prefix(files, root / "python"), root / "python.tar.gz")


@pytest.fixture(scope="module")
def arm_index(tmp_path_factory: pytest.TempPathFactory) -> str:
    files = aarch64_files()
    root = tmp_path_factory.mktemp("arm-index")
    (root / "files").mkdir()
    wheel = root / "files" / numpy_wheel(files).name
    wheel.write_bytes(numpy_wheel(files).read_bytes())
    tag = "cp311-cp311-manylinux_2_17_aarch64"
    junk = build_wheel(
        root / "files",
        "armjunk",
        "1.0",
        {"armjunk/__init__.py": "", "armjunk/_x.cpython-311-aarch64-linux-gnu.so": b"junk" * 64},
        tag=tag,
    )
    write_simple_index(root, [wheel, junk])
    with StaticServer(root) as server:
        yield f"{server.url}/simple"


def _workspace(build_workspace, pbs_mirror, arm_archive, deps: list[str]) -> Path:
    pbs_mirror.add(arm_archive, pbs_mirror.name("linux-aarch64", version=DEBIAN_VERSION))
    config = {"packages": {"dependencies": deps}, "build": {"platforms": ["linux-aarch64"]}}
    return build_workspace(runtimes={DEBIAN_VERSION: config})


def test_numpy_in_a_linux_aarch64_runtime_imports_under_qemu(
    arm_archive, arm_index, build_workspace, pbs_mirror, run_cli, monkeypatch, tmp_path
):
    uv_env(monkeypatch, tmp_path, arm_index)
    ws = _workspace(build_workspace, pbs_mirror, arm_archive, ["numpy==2.2.6"])
    result = run_cli("-w", ws, "-o", "json", "build", DEBIAN_VERSION, "--platform", "linux-aarch64")
    assert result.code == 0, result.stderr
    verify = read_manifest(ws, STEM)["verify"]
    emulated = verify["emulatedImports"]
    assert emulated["ran"] and "qemu-aarch64" in emulated["note"] and not verify["imports"]["ran"]
    assert emulated["extensionModules"] >= 15 and emulated["modules"] > emulated["extensionModules"]
    assert verify["relocated"] and verify["ok"] and verify["static"]["packageFiles"] >= 15
    again = run_cli("-w", ws, "-o", "json", "verify", DEBIAN_VERSION, "--platform", "linux-aarch64", "--recheck")
    assert again.code == 0 and again.json()["emulatedImports"]["ran"], again.stderr


def test_a_broken_extension_fails_the_aarch64_build_under_qemu(
    arm_archive, arm_index, build_workspace, pbs_mirror, run_cli, monkeypatch, tmp_path
):
    uv_env(monkeypatch, tmp_path, arm_index)
    ws = _workspace(build_workspace, pbs_mirror, arm_archive, ["armjunk"])
    result = run_cli("-w", ws, "build", DEBIAN_VERSION, "--platform", "linux-aarch64")
    assert result.code == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "'armjunk._x'" in line and "'armjunk'" in line and "linux-aarch64 under emulation" in line
    assert dist_files(ws) == []
    (ws / "checks").mkdir()
    (ws / "checks" / "linux-aarch64.json").write_text(json.dumps({"armjunk-*.whl": {"armjunk._x": "ELF"}}))
    assert run_cli("-w", ws, "build", DEBIAN_VERSION, "--platform", "linux-aarch64").code == 0


def test_without_an_emulator_only_the_static_checks_run(tmp_path, monkeypatch):
    prefix = tmp_path / "rt"
    (prefix / "lib/python3.11/site-packages").mkdir(parents=True)
    monkeypatch.setenv("PATH", str(tmp_path))  # no qemu on it
    report = check_prefix(RuntimeLayout(prefix, ARM, DEBIAN_VERSION), VerifySettings())
    assert not report.checks["imports"].ran and not report.checks["emulatedImports"].ran
    assert report.checks["static"].ran and "no qemu-aarch64" in report.checks["imports"].note
    assert "static checks only: no qemu-aarch64" in report.summary()
