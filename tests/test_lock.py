"""Locking against the loopback index: joint resolution, fallbacks, exclusions, noDeps, freshness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w

from runenv.build.packages.lock import ensure_lock, lock_is_fresh, lock_runtime, pick_artifact, read_lock
from runenv.build.packages.lockcheck import file_roots
from runenv.cache import Cache
from runenv.compat import tomllib
from runenv.config import load_runtime_config
from runenv.errors import ConfigError, IntegrityError, StepError
from runenv.fetch import fetch_all
from runenv.plan import build_plan
from runenv.workspace import find_workspace
from tests.helpers import HOST

# `uv pip compile --format pylock.toml --generate-hashes --no-binary sdistonly` of tool-a and sdistonly (uv 0.13.9).
UV_PYLOCK = """\
lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.12"

[[packages]]
name = "helper-lib"
version = "1.2"
wheels = [{ url = "http://127.0.0.1:36525/files/helper_lib-1.2-py3-none-any.whl", hashes = { sha256 = "91043b064077d105b286bd8542000094e29fe92dc1c84b2866dcc22c875f029d" } }]

[[packages]]
name = "sdistonly"
version = "2.0"
sdist = { url = "http://127.0.0.1:36525/files/sdistonly-2.0.tar.gz", hashes = { sha256 = "8f31c661adb8d2aba10471f98ce25e0259caadabf0cc640ab725901375066f12" } }
"""  # noqa: E501  (uv's output, verbatim)


def test_pick_artifact_reads_uv_pylock_entries():
    helper, sdist_only = tomllib.loads(UV_PYLOCK)["packages"]
    assert pick_artifact(helper, set()) == (
        "http://127.0.0.1:36525/files/helper_lib-1.2-py3-none-any.whl",
        "91043b064077d105b286bd8542000094e29fe92dc1c84b2866dcc22c875f029d",
        "wheel",
    )
    url, sha, kind = pick_artifact(sdist_only, set())
    assert kind == "sdist" and url.endswith("/sdistonly-2.0.tar.gz") and sha.startswith("8f31c661")
    both = {**helper, "sdist": sdist_only["sdist"]}
    assert pick_artifact(both, {"helper-lib"})[2] == "sdist"  # noBinary / forceSource: the sdist even with a wheel
    with pytest.raises(StepError, match="no installable artifact for helper-lib 1.2"):
        pick_artifact({**helper, "wheels": []}, set())


def _lock(ws_root: Path, runtime: str, platform: str):
    ws = find_workspace(explicit=ws_root)
    loaded = load_runtime_config(ws, ws.runtime(runtime))
    plan = build_plan(loaded, platform)
    warnings: list[str] = []
    result = lock_runtime(loaded, plan, warn=warnings.append)
    return result.lock, warnings, loaded, plan


def test_lock_host_resolves_dependencies_with_urls_hashes_and_index(index, make_workspace):
    ws = make_workspace(runtimes={"3.11.7": {"packages": {"dependencies": ["tool-a"]}}})
    lock, warnings, _, _ = _lock(ws, "3.11.7", HOST)
    assert {p.name: p.version for p in lock.packages} == {"tool-a": "1.0", "helper-lib": "1.2"}
    tool = lock.package("tool-a")
    assert tool.kind == "wheel" and tool.url.startswith(index.url) and tool.url.endswith(".whl")
    assert tool.sha256 == __import__("hashlib").sha256(index.files["tool-a"].read_bytes()).hexdigest()
    assert tool.index == index.simple and tool.dependencies == ("helper-lib",)
    doc = tomllib.loads((ws / "python-3.11.7" / f"pylock.{HOST}.toml").read_text())
    assert doc["lock-version"] == "1.0" and doc["tool"]["runenv"]["platform"] == HOST
    assert warnings == []


def test_lock_windows_from_linux_takes_the_win_amd64_wheel(index, make_workspace):
    ws = make_workspace(runtimes={"3.11.7": {"packages": {"dependencies": ["tool-a", "winonly"]}}})
    lock, _, _, _ = _lock(ws, "3.11.7", "windows-x64")
    assert lock.package("winonly").filename == "winonly-1.0-py3-none-win_amd64.whl"
    assert lock.platform == "windows-x64"


def test_excluded_transitive_dependency_is_absent(index, make_workspace):
    cfg = {"packages": {"dependencies": ["needs-excluded"], "exclude": {"excluded-dep": {HOST: "not wanted"}}}}
    ws = make_workspace(runtimes={"3.11.7": cfg})
    lock, _, _, _ = _lock(ws, "3.11.7", HOST)
    assert [p.name for p in lock.packages] == ["needs-excluded"]


def test_no_deps_package_does_not_pull_its_dependencies(index, make_workspace):
    cfg = {"packages": {"dependencies": ["nodeps-pkg", "tool-a"], "noDeps": ["nodeps-pkg"]}}
    ws = make_workspace(runtimes={"3.11.7": cfg})
    lock, _, _, _ = _lock(ws, "3.11.7", HOST)
    assert {p.name for p in lock.packages} == {"nodeps-pkg", "tool-a", "helper-lib"}


def test_fallback_skip_drops_package_with_warning_and_records_it(index, make_workspace):
    ws = make_workspace(runtimes={"3.11.7": {"packages": {"dependencies": ["tool-a", "winonly"]}}})
    lock, warnings, _, _ = _lock(ws, "3.11.7", HOST)
    assert lock.package("winonly") is None and lock.package("tool-a") is not None
    assert [(s.name, s.platform, s.reason) for s in lock.skipped] == [("winonly", HOST, f"no wheel for {HOST}")]
    assert any("winonly" in w for w in warnings)


def test_fallback_source_locks_the_sdist(index, make_workspace):
    cfg = {"packages": {"dependencies": ["sdistonly"], "resolution": {"allowSourceList": ["sdistonly"]}}}
    ws = make_workspace(runtimes={"3.11.7": cfg})
    lock, _, _, _ = _lock(ws, "3.11.7", HOST)
    pkg = lock.package("sdistonly")
    assert pkg.kind == "sdist" and pkg.filename == "sdistonly-2.0.tar.gz"


def test_fallback_error_names_package_and_platform(index, make_workspace):
    cfg = {"packages": {"dependencies": ["winonly"], "resolution": {"strictMissing": True}}}
    ws = make_workspace(runtimes={"3.11.7": cfg})
    with pytest.raises(StepError, match=f"winonly.*{HOST}"):
        _lock(ws, "3.11.7", HOST)
    assert not (ws / "python-3.11.7" / f"pylock.{HOST}.toml").exists()


def test_force_source_package_is_locked_as_sdist(index, make_workspace):
    cfg = {"packages": {"dependencies": ["sdistonly"], "forceSource": {"sdistonly": {HOST: "patched build"}}}}
    ws = make_workspace(runtimes={"3.11.7": cfg})
    lock, _, _, _ = _lock(ws, "3.11.7", HOST)
    assert lock.package("sdistonly").kind == "sdist"


def test_distutils_shim_adds_setuptools_and_wheel_for_312(index, make_workspace, monkeypatch):
    index.require("setuptools", "wheel")
    ws = make_workspace(runtimes={"3.12.10": {"packages": {"dependencies": ["helper-lib"]}}})
    lock, _, _, _ = _lock(ws, "3.12.10", HOST)
    assert {"setuptools", "wheel", "helper-lib"} <= {p.name for p in lock.packages}
    monkeypatch.setenv("RUNENV_DISABLE_DISTUTILS_SHIM", "1")  # a switch of the build, not of the lock
    relocked, _, loaded, plan = _lock(ws, "3.12.10", HOST)
    assert lock_is_fresh(loaded, plan) and {p.name for p in relocked.packages} == {p.name for p in lock.packages}
    off = {"build": {"distutilsShim": False}, "packages": {"dependencies": ["helper-lib"]}}
    (ws / "python-3.12.10" / "config.json").write_text(json.dumps(off))
    lock, _, _, _ = _lock(ws, "3.12.10", HOST)
    assert {p.name for p in lock.packages} == {"helper-lib"}


def test_freshness_follows_the_inputs(index, make_workspace):
    ws = make_workspace(runtimes={"3.11.7": {"packages": {"dependencies": ["helper-lib"]}}})
    _, _, loaded, plan = _lock(ws, "3.11.7", HOST)
    assert lock_is_fresh(loaded, plan)
    assert ensure_lock(loaded, plan, locked=True).written is False
    (ws / "python-3.11.7" / "config.json").write_text('{"packages": {"dependencies": ["tool-a"]}}')
    ws_ = find_workspace(explicit=ws)
    loaded = load_runtime_config(ws_, ws_.runtime("3.11.7"))
    plan = build_plan(loaded, HOST)
    assert not lock_is_fresh(loaded, plan)
    with pytest.raises(StepError, match="stale"):
        ensure_lock(loaded, plan, locked=True)
    result = ensure_lock(loaded, plan)
    assert result.written and result.lock.package("tool-a") is not None


def test_wrong_hash_in_index_fails_at_fetch_and_caches_nothing(index, make_workspace, tmp_path):
    ws = make_workspace(runtimes={"3.11.7": {"packages": {"dependencies": ["badhash"]}}})
    lock, _, _, _ = _lock(ws, "3.11.7", HOST)
    cache = Cache(tmp_path / "cache")
    with pytest.raises(IntegrityError, match="badhash"):
        fetch_all(lock.downloads(), cache)
    assert not list((tmp_path / "cache").glob("sha256/*"))


def test_read_lock_of_a_broken_file_names_it(tmp_path):
    path = tmp_path / "pylock.linux-x64.toml"
    path.write_text("lock-version = '1.0'\n")
    with pytest.raises(StepError, match="pylock.linux-x64.toml"):
        read_lock(path)


WHEEL = "tool_a-1.0-py3-none-any.whl"


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("url", "{files}/..%2F..%2Fetc%2Ftool_a-1.0-py3-none-any.whl", "is not a plain file name"),
        ("url", "{files}/helper_lib-1.2-py3-none-any.whl", "is not tool-a 1.0"),
        ("url", "{files}/tool_a-9.9-py3-none-any.whl", "is not tool-a 1.0"),
        ("url", "{files}/tool_a.whl", "is not a valid wheel name"),
        ("url", "{files}/.tool_a-1.0-py3-none-any.whl", "is not a plain file name"),
        ("url", "ftp://host/tool_a-1.0-py3-none-any.whl", "scheme 'ftp' is not http or https"),
        ("url", "file:///etc/tool_a-1.0-py3-none-any.whl", "outside every configured file: index"),
        ("sha256", "0" * 63, "is not 64 hex digits"),
        ("sha256", "../../" + "0" * 58, "is not 64 hex digits"),
        ("version", "1.0; rm -rf /", "is not a valid version"),
        ("name", "../tool-a", "not a normalised distribution name"),
    ],
)
def test_tampered_lock_entry_is_refused_naming_file_and_entry(index, make_workspace, field, value, complaint):
    ws = make_workspace(runtimes={"3.11.7": {"packages": {"dependencies": ["tool-a"]}}})
    _lock(ws, "3.11.7", HOST)
    path = ws / "python-3.11.7" / f"pylock.{HOST}.toml"
    doc = tomllib.loads(path.read_text())
    entry = next(p for p in doc["packages"] if p["name"] == "tool-a")
    wheel = entry["wheels"][0]
    value = value.format(files=f"{index.url}/files")
    if field == "url":
        wheel["url"] = value
    elif field == "sha256":
        wheel["hashes"]["sha256"] = value
    else:
        entry[field] = value
    path.write_text(tomli_w.dumps(doc))
    with pytest.raises(ConfigError) as caught:
        read_lock(path)
    assert caught.value.message.startswith(f"{path}: packages[1] (")  # helper-lib is packages[0]
    assert complaint in caught.value.message
    assert caught.value.exit_code == 2


def test_file_artifacts_are_allowed_below_a_configured_file_index(index, make_workspace, tmp_path):
    ws = make_workspace(runtimes={"3.11.7": {"packages": {"dependencies": ["tool-a"]}}})
    _lock(ws, "3.11.7", HOST)
    path = ws / "python-3.11.7" / f"pylock.{HOST}.toml"
    text = path.read_text().replace(f"{index.url}/files/{WHEEL}", f"{(index.root / 'files' / WHEEL).as_uri()}")
    path.write_text(text)
    roots = (f"{index.root.as_uri()}/simple",)
    assert read_lock(path, file_roots(roots)).package("tool-a").url.startswith("file://")
    with pytest.raises(ConfigError, match="outside every configured file: index"):
        read_lock(path, file_roots([f"{(tmp_path / 'other').as_uri()}/simple"]))
