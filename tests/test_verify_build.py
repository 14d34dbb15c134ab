"""`runenv build` refuses runtimes that verification disproves (exit 1, one line, nothing in dist/) and passes them
when `checks/<platform>.json` allows the failure: a garbage extension submodule, a missing shared library, a too-new
glibc symbol, a broken dependency closure (linux-x64) and an x86-64 `.so` in a windows-x64 runtime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.built import dist_files, leftovers, read_manifest
from tests.helpers.http import StaticServer
from tests.helpers.index import _sha256, build_wheel, uv_env, write_simple_index
from tests.helpers.native import EXT_SUFFIX, NEW_GLIBC_CALL, build_extension, build_library
from tests.helpers.pbs import MINOR, VERSION

CP = f"cp{MINOR.replace('.', '')}"
LINUX_TAG = f"{CP}-{CP}-manylinux_2_17_x86_64"
# package: (platform, entry of checks/<platform>.json that allows its failure, words the failure line has)
CASES = {
    "deepext": ("linux-x64", {"deepext-1-*-whl": {"deepext.sub._ext": "elf"}}, ("deepext.sub._ext", "invalid ELF")),
    "needsmissing": ("linux-x64", {"needsmissing": {"needsmissing._ext": "libmissing.so"}}, ("libmissing.so",)),
    "newglibc": ("linux-x64", {"newglibc-*.whl": {"newglibc.libs.libnew": "GLIBC_2.34"}}, ("GLIBC_2.34",)),
    "ghostdep": ("linux-x64", {"ghostdep": {"ghost-dep": "not installed"}}, ("ghost-dep",)),
    "elfonwin": ("windows-x64", {"elfonwin": {"elfonwin._ext": "not a PE file"}}, ("elfonwin._ext", "not a PE")),
}


def _native_wheels(files: Path, work: Path) -> list[Path]:
    missing = build_library(work / "elsewhere", "libmissing.so")
    new = build_library(work / "libs", "libnew.so", calls=NEW_GLIBC_CALL)
    ext = build_extension(work / "plain", "x._ext").read_bytes()
    return [
        build_wheel(
            files,
            "deepext",
            "1.0",
            {"deepext/__init__.py": "", "deepext/sub/__init__.py": "", f"deepext/sub/_ext{EXT_SUFFIX}": b"junk" * 64},
            tag=LINUX_TAG,
        ),
        build_wheel(
            files,
            "needsmissing",
            "1.0",
            {
                "needsmissing/__init__.py": "",
                f"needsmissing/_ext{EXT_SUFFIX}": build_extension(
                    work / "m", "needsmissing._ext", needs=(missing,)
                ).read_bytes(),
            },
            tag=LINUX_TAG,
        ),
        build_wheel(
            files,
            "newglibc",
            "1.0",
            {
                "newglibc/__init__.py": "",
                f"newglibc/_ext{EXT_SUFFIX}": build_extension(
                    work / "n", "newglibc._ext", needs=(new,), rpath="$ORIGIN/../newglibc.libs"
                ).read_bytes(),
                "newglibc.libs/libnew.so": new.read_bytes(),
            },
            tag=LINUX_TAG,
        ),
        build_wheel(files, "ghostdep", "1.0", {"ghostdep.py": ""}, requires=("ghost-dep",)),
        build_wheel(files, "elfonwin", "1.0", {"elfonwin/__init__.py": "", "elfonwin/_ext.so": ext}),
    ]


def _hide_requirement(root: Path, wheel: Path, requirement: str) -> None:
    """The index's PEP 658 metadata leaves out a requirement the wheel's own METADATA has (so the lock cannot
    see it: what a stale mirror or a wheel rebuilt under the same name does)."""
    meta = root / "files" / f"{wheel.name}.metadata"
    old = _sha256(meta)
    meta.write_text(meta.read_text().replace(f"Requires-Dist: {requirement}\n", ""))
    page = root / "simple" / wheel.name.split("-")[0] / "index.html"
    page.write_text(page.read_text().replace(old, _sha256(meta)))


@pytest.fixture(scope="module")
def native_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("native-index")
    files = root / "files"
    files.mkdir()
    wheels = _native_wheels(files, root / "work")
    write_simple_index(root, wheels)
    _hide_requirement(root, next(w for w in wheels if w.name.startswith("ghostdep")), "ghost-dep")
    with StaticServer(root) as server:
        yield f"{server.url}/simple"


@pytest.fixture
def native_index_only(native_index: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    uv_env(monkeypatch, tmp_path, native_index)
    return native_index


@pytest.mark.parametrize("package", sorted(CASES))
def test_build_fails_on_what_verification_disproves_and_passes_when_allowed(
    native_index_only, build_workspace, run_cli, package
):
    platform, allowed, words = CASES[package]
    ws = build_workspace(
        runtimes={VERSION: {"packages": {"dependencies": [package]}, "build": {"platforms": [platform]}}}
    )
    failed = run_cli("-w", ws, "build", VERSION, "--platform", platform)
    assert failed.code == 1, failed.stderr
    [line] = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert f"of distribution '{package}'" in line and platform in line and "Traceback" not in failed.stderr
    assert all(word in line for word in words), line
    assert dist_files(ws) == [] and leftovers(ws) == []

    (ws / "checks").mkdir()
    (ws / "checks" / f"{platform}.json").write_text(json.dumps(allowed))
    passed = run_cli("-w", ws, "-o", "json", "build", VERSION, "--platform", platform)
    assert passed.code == 0, passed.stderr
    verify = read_manifest(ws, f"python-{VERSION}-{platform}")["verify"]
    assert verify["ok"] and verify["allowedFailures"] and "allowed no failure" not in passed.stderr
    assert {f["distribution"] for f in verify["allowedFailures"]} == {package}
