"""Rules and fallbacks act on direct dependencies, as in the seed system; locked against the loopback index.

sccoda-style: a kept package needs a package a skip rule names (`needs-excluded` → `excluded-dep`).
prodigy-prot-style: a kept package needs a package without any wheel (`needs-sdistonly` → `sdistonly`).
Each case on the host and on a cross platform (windows-x64: the pure wheels fit it too); the
source fallback also through `runenv build`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runenv.build.packages.lock import lock_runtime
from runenv.compat import tomllib
from runenv.config import load_runtime_config
from runenv.errors import StepError
from runenv.plan import build_plan
from runenv.workspace import find_workspace
from tests.helpers import HOST
from tests.helpers.built import read_manifest
from tests.helpers.pbs import VERSION

PLATFORMS = [HOST, "windows-x64"]


def _lock(ws_root: Path, platform: str):
    ws = find_workspace(explicit=ws_root)
    loaded = load_runtime_config(ws, ws.runtime("3.11.7"))
    warnings: list[str] = []
    lock = lock_runtime(loaded, build_plan(loaded, platform), warn=warnings.append).lock
    return lock, warnings


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_shared_skip_of_a_needed_package_installs_it_as_a_dependency(index, make_workspace, platform):
    ws = make_workspace(
        shared={"packages": {"skip": {"excluded-dep": {platform: "not wanted here"}}}},
        runtimes={"3.11.7": {"packages": {"dependencies": ["needs-excluded", "tool-a"]}}},
    )
    lock, warnings = _lock(ws, platform)
    assert {p.name for p in lock.packages} == {"needs-excluded", "excluded-dep", "tool-a", "helper-lib"}
    [warning] = warnings
    assert "excluded-dep" in warning and "needs-excluded" in warning and "not wanted here" in warning
    [kept] = lock.kept
    assert (kept.name, kept.platform, kept.required_by) == ("excluded-dep", platform, ("needs-excluded",))
    assert lock.skipped == []
    doc = tomllib.loads((ws / "python-3.11.7" / f"pylock.{platform}.toml").read_text())
    assert doc["tool"]["runenv"]["kept"][0]["required-by"] == ["needs-excluded"]


def test_a_skipped_direct_dependency_that_another_needs_is_kept_too(index, make_workspace):
    cfg = {"dependencies": ["needs-excluded", "excluded-dep"], "skip": {"excluded-dep": {HOST: "r"}}}
    lock, warnings = _lock(make_workspace(runtimes={"3.11.7": {"packages": cfg}}), HOST)
    assert lock.package("excluded-dep") is not None and [k.name for k in lock.kept] == ["excluded-dep"]


def test_a_skipped_direct_dependency_nobody_needs_stays_out(index, make_workspace):
    cfg = {"dependencies": ["tool-a", "excluded-dep"], "skip": {"excluded-dep": {HOST: "r"}}}
    lock, warnings = _lock(make_workspace(runtimes={"3.11.7": {"packages": cfg}}), HOST)
    assert lock.package("excluded-dep") is None and lock.kept == [] and warnings == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_dependency_without_wheel_skips_the_direct_package_that_needs_it(index, make_workspace, platform):
    cfg = {"dependencies": ["needs-sdistonly", "tool-a"]}
    lock, warnings = _lock(make_workspace(runtimes={"3.11.7": {"packages": cfg}}), platform)
    assert {p.name for p in lock.packages} == {"tool-a", "helper-lib"}
    [skipped] = lock.skipped
    assert skipped.name == "needs-sdistonly" and "sdistonly" in skipped.reason.replace("needs-sdistonly", "")
    assert skipped.reason == f"needs sdistonly, which has no wheel for {platform}"
    assert any(w.startswith("needs-sdistonly:") for w in warnings)


def test_a_dependency_with_neither_wheel_nor_sdist_skips_the_direct_package(index, make_workspace):
    lock, _ = _lock(
        make_workspace(runtimes={"3.11.7": {"packages": {"dependencies": ["needs-winonly", "tool-a"]}}}), HOST
    )
    assert [s.reason for s in lock.skipped] == [f"needs winonly, which has no wheel for {HOST}"]
    assert lock.package("needs-winonly") is None and lock.package("tool-a") is not None


@pytest.mark.parametrize("platform", PLATFORMS)
def test_strict_missing_names_the_direct_package_and_its_dependency(index, make_workspace, platform):
    cfg = {"dependencies": ["needs-sdistonly"], "resolution": {"strictMissing": True}}
    ws = make_workspace(runtimes={"3.11.7": {"packages": cfg}})
    with pytest.raises(StepError, match=f"needs-sdistonly needs sdistonly, and no wheel fits on {platform}"):
        _lock(ws, platform)
    assert not (ws / "python-3.11.7" / f"pylock.{platform}.toml").exists()


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_source_fallback_covers_the_direct_package_s_subtree(index, make_workspace, platform):
    cfg = {"dependencies": ["needs-sdistonly"], "resolution": {"allowSourceList": ["needs-sdistonly"]}}
    lock, warnings = _lock(make_workspace(runtimes={"3.11.7": {"packages": cfg}}), platform)
    assert lock.package("needs-sdistonly").kind == "wheel"  # it has one
    assert lock.package("sdistonly").kind == "sdist"  # its dependency comes from source
    assert lock.skipped == [] and warnings == []


def test_only_binary_dependency_refuses_the_source_fallback(index, make_workspace):
    cfg = {
        "dependencies": ["needs-sdistonly"],
        "resolution": {"allowSourceList": ["needs-sdistonly"], "onlyBinaryList": ["sdistonly"]},
    }
    with pytest.raises(StepError, match="needs-sdistonly needs sdistonly, and it is in .*onlyBinaryList"):
        _lock(make_workspace(runtimes={"3.11.7": {"packages": cfg}}), HOST)


def test_build_makes_the_source_fallback_s_dependency_from_source_on_the_host_only(index, build_workspace, run_cli):
    index.require("setuptools")
    packages = {"dependencies": ["needs-sdistonly"], "resolution": {"allowSourceList": ["needs-sdistonly"]}}
    ws = build_workspace(runtimes={VERSION: {"packages": packages}})
    built = run_cli("-w", ws, "build", VERSION, "--platform", "linux-x64")
    assert built.code == 0, built.stderr
    how = {p["name"]: p["how"] for p in read_manifest(ws, f"python-{VERSION}-linux-x64")["packages"]}
    assert how["sdistonly"] == "built-from-sdist" and how["needs-sdistonly"] == "wheel"

    cross = run_cli("-w", ws, "build", VERSION, "--platform", "windows-x64")
    assert cross.code == 1  # sdists are built natively only (README "sdists")
    [line] = [ln for ln in cross.stderr.splitlines() if ln.startswith("error:")]
    assert "sdistonly" in line and "windows-x64" in line
