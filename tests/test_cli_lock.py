"""`runenv lock` through the CLI: host and foreign platforms, skipped packages, errors."""

from __future__ import annotations

from tests.helpers import HOST


def test_lock_two_platforms_as_json(index, make_workspace, run_cli):
    ws = make_workspace(runtimes={"3.11.7": {"packages": {"dependencies": ["tool-a", "winonly"]}}})
    result = run_cli("lock", "3.11.7", "--platform", HOST, "--platform", "windows-x64", "-w", ws, "-o", "json")
    assert result.code == 0, result.stderr
    by_platform = {r["platform"]: r for r in result.json()}
    assert {p["name"] for p in by_platform["windows-x64"]["packages"]} == {"tool-a", "helper-lib", "winonly"}
    assert by_platform[HOST]["skipped"] == [{"name": "winonly", "platform": HOST, "reason": f"no wheel for {HOST}"}]
    assert "warning: winonly" in result.stderr
    assert (ws / "python-3.11.7" / "pylock.windows-x64.toml").is_file()


def test_lock_with_registry_credentials_never_prints_them(index, make_workspace, run_cli):
    bad = index.url.replace("http://", "http://user:s3cret@") + "/nothing-here"
    cfg = {"registries": {"default": [bad]}, "packages": {"dependencies": ["tool-a"]}}
    ws = make_workspace(runtimes={"3.11.7": cfg})
    result = run_cli("lock", "3.11.7", "-w", ws)
    assert result.code == 1
    assert "s3cret" not in result.stderr + result.stdout
    assert len(result.error.strip().splitlines()) <= 2


def test_lock_strict_missing_exits_1_naming_package_and_platform(index, make_workspace, run_cli):
    cfg = {"packages": {"dependencies": ["winonly"], "resolution": {"strictMissing": True}}}
    ws = make_workspace(runtimes={"3.11.7": cfg})
    result = run_cli("lock", "3.11.7", "--platform", HOST, "-w", ws)
    assert result.code == 1
    assert "winonly" in result.stderr and HOST in result.stderr


def test_lock_unknown_platform_is_a_usage_error(make_workspace, run_cli):
    ws = make_workspace(runtimes={"3.11.7": {}})
    result = run_cli("lock", "3.11.7", "--platform", "solaris-sparc", "-w", ws)
    assert result.code == 2 and "solaris-sparc" in result.stderr
