"""`runenv publish --from DIR…`: artifacts gathered from several runners' dist/ directories, published in one step."""

from __future__ import annotations

import shutil

from tests.helpers.dist import make_artifact, read_catalogue


def _runner(ws, name, *platforms, salt=""):
    """A runner's dist/ holding 3.12.10 for `platforms`: built in a checkout of `ws` at `<ws>/../<name>`."""
    checkout = ws.parent / name
    shutil.copytree(ws, checkout, ignore=shutil.ignore_patterns("dist"))
    for platform in platforms:
        make_artifact(checkout, "3.12.10", platform, salt=salt)
    return checkout / "dist"


def test_publish_from_several_runners(make_workspace, run_cli, tmp_path):
    ws = make_workspace(shared={"build": {"platforms": ["linux-x64", "windows-x64", "macosx-aarch64"]}})
    linux = _runner(ws, "linux", "linux-x64")
    windows = _runner(ws, "windows", "windows-x64", "linux-x64")  # linux-x64 again: the same bytes
    target = tmp_path / "store"
    result = run_cli("-w", ws, "publish", "3.12.10", "--from", linux, "--from", windows, "--to", target, "-o", "json")
    assert result.code == 0, result.stderr
    assert sorted(i["platform"] for i in result.json()["uploaded"]) == ["linux-x64", "windows-x64"]
    entries = read_catalogue(target)["runtimes"]["3.12.10"]
    assert sorted(entries) == ["linux-x64", "windows-x64"]
    for platform, source in (("linux-x64", linux), ("windows-x64", windows)):
        name = f"python-3.12.10-{platform}.tar.gz"
        assert (target / entries[platform]["file"]).read_bytes() == (source / name).read_bytes()
    assert not (ws / "dist").exists()


def test_same_name_with_other_bytes_refuses_everything(make_workspace, run_cli, tmp_path):
    ws = make_workspace(shared={"build": {"platforms": ["linux-x64", "windows-x64"]}})
    one = _runner(ws, "one", "linux-x64", "windows-x64")
    other = _runner(ws, "other", "linux-x64", salt="rebuilt elsewhere")
    target = tmp_path / "store"
    result = run_cli("-w", ws, "publish", "3.12.10", "--from", one, "--from", other, "--to", target)
    assert result.code == 1
    line = next(li for li in result.stderr.splitlines() if li.startswith("error: refused 3.12.10 linux-x64"))
    assert "python-3.12.10-linux-x64.tar.gz differs between" in line and str(one) in line and str(other) in line
    assert not target.exists() or not any(target.rglob("*.tar.gz"))  # all-or-nothing: windows-x64 not sent either


def test_from_names_an_existing_directory(make_workspace, run_cli, tmp_path):
    ws = make_workspace()
    result = run_cli("-w", ws, "publish", "3.12.10", "--from", tmp_path / "nope", "--to", tmp_path / "store")
    assert result.code == 2 and "nope" in result.stderr


def test_incomplete_artifact_names_its_directory(make_workspace, run_cli, tmp_path):
    ws = make_workspace(shared={"build": {"platforms": ["linux-x64"]}})
    runner = _runner(ws, "runner", "linux-x64")
    (runner / "python-3.12.10-linux-x64.manifest.toml").unlink()
    result = run_cli("-w", ws, "publish", "3.12.10", "--from", runner, "--to", tmp_path / "store")
    assert result.code == 1
    assert f"manifest.toml is missing in {runner}" in result.stderr
