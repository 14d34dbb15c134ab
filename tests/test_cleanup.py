"""`runenv cleanup`: removes only what runenv made, dry-run changes nothing, remnants, symlinks, audit log."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from runenv.errors import UsageError
from runenv.ops.cleanup import guard_root
from runenv.owner import mark
from tests.conftest import run_runenv, write_json


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under `root` (symlinks not followed) with its type, size, mtime and link target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            out[str(path.relative_to(root))] = (
                st.st_mode,
                st.st_size,
                st.st_mtime_ns,
                os.readlink(path) if path.is_symlink() else None,
            )
    return out


def make_venv(path: Path, windows: bool = False) -> Path:
    scripts = path / ("Scripts" if windows else "bin")
    scripts.mkdir(parents=True)
    (scripts / ("activate.bat" if windows else "activate")).write_text("# activate\n")
    (path / "lib").mkdir()
    (path / "lib" / "big.bin").write_bytes(b"v" * 5000)
    return path


@pytest.fixture
def messy(make_workspace, tmp_path) -> Path:
    """A workspace with runenv outputs, user files, locks, a venv and symlinks leading out."""
    ws = make_workspace(runtimes={"3.12.10": {}})
    dist = ws / "dist"
    dist.mkdir()
    (dist / "python-3.12.10-linux-x64.tar.gz").write_bytes(b"t" * 1000)
    (dist / "python-3.12.10-linux-x64.tar.gz.sha256").write_text("a" * 64 + "  x\n")
    (dist / "python-3.12.10-linux-x64.manifest.toml").write_text("runtime = '3.12.10'\n")
    (dist / "notes.txt").write_text("mine")  # not runenv's: kept
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("do not touch")
    (dist / "python-3.12.10-windows-x64.tar.gz").symlink_to(outside)  # named like an artifact, leads out
    build = ws / ".runenv" / "build" / "python-3.12.10-linux-x64"
    build.mkdir(parents=True)
    (build / "file.bin").write_bytes(b"b" * 300)
    (build / "escape").symlink_to(outside)
    (ws / ".runenv" / "tmp").symlink_to(outside)
    (ws / ".runenv" / "state.json").write_text("{}")  # not a scratch dir: kept
    write_json(ws / "python-3.12.10" / "pylock.linux-x64.toml", "lock-version = '1.0'\n")
    make_venv(ws / ".venv")
    make_venv(ws / "python-3.12.10" / "env-win", windows=True)
    (ws / "env").mkdir()  # a plain directory named env, not a virtual environment
    (ws / "env" / "bin").mkdir()
    return ws


def test_dry_run_changes_nothing_and_lists_what_cleanup_then_frees(messy, run_cli, tmp_path):
    before = snapshot(tmp_path)
    dry = run_cli("-w", messy, "-o", "json", "cleanup", "--dry-run")
    assert dry.code == 0, dry.stderr
    assert snapshot(tmp_path) == before
    real = run_cli("-w", messy, "-o", "json", "cleanup")
    assert real.code == 0, real.stderr
    dry_data, real_data = dry.json(), real.json()
    assert dry_data["items"] == real_data["items"] and dry_data["total"] == real_data["total"] == 1000 + 68 + 20 + 300
    assert all(not Path(i["path"]).exists() and not Path(i["path"]).is_symlink() for i in real_data["items"])


def test_cleanup_removes_only_what_runenv_made(messy, run_cli, tmp_path):
    result = run_cli("-w", messy, "cleanup")
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in (messy / "dist").iterdir()) == ["notes.txt"]
    assert not (messy / ".runenv" / "build").exists()
    for kept in (
        "shared-config.json",
        "python-3.12.10/config.json",
        "python-3.12.10/pylock.linux-x64.toml",
        ".runenv/state.json",
        ".venv/bin/activate",
        "env/bin",
    ):
        assert (messy / kept).exists(), kept
    assert (tmp_path / "outside" / "precious.txt").read_text() == "do not touch"
    assert (messy / ".runenv" / "tmp").is_symlink()  # a symlink outside dist/ is refused, not removed
    assert "refused  .runenv/tmp" in result.stdout and "freed 1.4 KB" in result.stdout


def test_symlinks_leading_out_are_not_followed(messy, run_cli, tmp_path):
    data = run_cli("-w", messy, "-o", "json", "cleanup").json()
    link = next(i for i in data["items"] if i["path"].endswith("windows-x64.tar.gz"))
    assert link["size"] == 0  # the link itself, not what it points to
    assert not (messy / "dist" / "python-3.12.10-windows-x64.tar.gz").is_symlink()
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["precious.txt"]
    assert [r["path"] for r in data["refused"]] == [str(messy / ".runenv" / "tmp")]


def test_dist_that_is_a_symlink_is_refused(make_workspace, run_cli, tmp_path):
    ws = make_workspace()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "python-3.12.10-linux-x64.tar.gz").write_text("not yours")
    (ws / "dist").symlink_to(elsewhere)
    data = run_cli("-w", ws, "-o", "json", "cleanup").json()
    assert data["items"] == [] and data["refused"][0]["path"] == str(ws / "dist")
    assert (elsewhere / "python-3.12.10-linux-x64.tar.gz").exists()


def test_remnants_are_reported_and_kept_unless_asked(messy, run_cli):
    data = run_cli("-w", messy, "-o", "json", "cleanup").json()
    kept = {k["path"] for k in data["kept"] if "remnant" in k["reason"]}
    assert kept == {str(messy / ".venv"), str(messy / "python-3.12.10" / "env-win")}
    assert (messy / ".venv").is_dir()
    data = run_cli("-w", messy, "-o", "json", "cleanup", "--remnants").json()
    removed = {i["path"]: i["size"] for i in data["items"] if i["kind"] == "remnant"}
    assert removed == {str(messy / ".venv"): 5000 + 11, str(messy / "python-3.12.10" / "env-win"): 5000 + 11}
    assert not (messy / ".venv").exists() and (messy / "env" / "bin").is_dir()


def test_every_removal_is_in_the_audit_log(messy, run_cli):
    data = run_cli("-w", messy, "-o", "json", "cleanup").json()
    lines = [json.loads(line) for line in (messy / ".runenv" / "cleanup.log").read_text().splitlines()]
    assert [(e["path"], e["size"]) for e in lines] == [(i["path"], i["size"]) for i in data["items"]]
    assert all(e["time"].endswith("+00:00") for e in lines)
    run_cli("-w", messy, "cleanup", "--dry-run")
    assert len((messy / ".runenv" / "cleanup.log").read_text().splitlines()) == len(lines)


def test_cache_is_removed_only_with_the_flag(messy, run_cli, sandbox):
    cache = sandbox / "runenv-cache"
    (cache / "sha256").mkdir(parents=True)
    (cache / "sha256" / ("0" * 64)).write_bytes(b"c" * 123)
    assert all(i["kind"] != "cache" for i in run_cli("-w", messy, "-o", "json", "cleanup").json()["items"])
    assert cache.exists()
    (cache / "notes-of-someone-else.txt").write_text("shared cache dir: not runenv's")
    data = run_cli("-w", messy, "-o", "json", "cleanup", "--cache").json()
    assert [(i["kind"], i["size"]) for i in data["items"]] == [("cache", 123)]
    assert not (cache / "sha256").exists()
    assert (cache / "notes-of-someone-else.txt").read_text() == "shared cache dir: not runenv's"


def test_refuses_home_and_root(sandbox, run_cli):
    write_json(sandbox / "shared-config.json", {})
    result = run_cli("-w", sandbox, "cleanup", "--dry-run")
    assert result.code == 2 and "home directory" in result.stderr
    with pytest.raises(UsageError, match="it is / or the home directory"):
        guard_root(Path("/"), "workspace")


def test_refuses_a_cache_that_holds_the_workspace(make_workspace, run_cli, monkeypatch, tmp_path):
    ws = make_workspace()
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(tmp_path))
    result = run_cli("-w", ws, "cleanup", "--cache")
    assert result.code == 2 and "holds the workspace" in result.stderr and ws.exists()


def test_scratch_left_by_dead_runs_outside_the_workspace_goes_and_live_scratch_stays(messy, run_cli):
    """Builds stage in RAM or RUNENV_SCRATCH_DIR, shared by every workspace: only dead runs' leftovers go."""
    pytest.importorskip("fcntl")
    build = Path(os.environ["RUNENV_SCRATCH_DIR"]) / "build"
    dead, live = build / "runenv-python-3.12.10-linux-x64.dead", build / "runenv-python-3.12.10-linux-x64.live"
    foreign = build / "runenv-python-3.12.10-linux-x64.foreign"  # named like runenv's, but without its marker
    for path in (dead, live, foreign):
        path.mkdir(parents=True)
        (path / "python3").write_bytes(b"x" * 1000)
    os.close(mark(dead))  # the run that made it was killed: nobody holds the lock
    holder = mark(live)  # a build still running
    past = time.time() - 30 * 86400
    os.utime(foreign, (past, past))
    try:
        result = run_cli("-w", messy, "cleanup")
    finally:
        os.close(holder)
    assert result.code == 0, result.stderr
    assert not dead.exists() and live.is_dir() and foreign.is_dir()
    assert str(dead) in result.stdout or dead.name in result.stdout
    assert foreign.name not in result.stdout


def test_a_build_running_in_the_workspace_keeps_its_staging(messy, run_cli):
    pytest.importorskip("fcntl")
    build = messy / ".runenv" / "build"
    live = build / "runenv-python-3.12.10-linux-x64.live"
    live.mkdir()
    holder = mark(live)  # the build holding it is still running
    try:
        result = run_cli("-w", messy, "cleanup")
    finally:
        os.close(holder)
    assert result.code == 0, result.stderr
    assert live.is_dir() and not (build / "python-3.12.10-linux-x64").exists()  # the dead run's staging went
    assert "in use by a running runenv" in result.stdout


def test_a_venv_is_found_by_its_layout_whatever_its_name(messy, run_cli):
    make_venv(messy / "old-env")
    (messy / "old-env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (messy / "tools").mkdir()
    (messy / "tools" / "pyvenv.cfg").write_text("home = /usr/bin\n")  # no bin/ or Scripts/: not a venv
    data = run_cli("-w", messy, "-o", "json", "cleanup", "--dry-run").json()
    kept = {k["path"] for k in data["kept"] if "remnant" in k["reason"]}
    assert str(messy / "old-env") in kept and str(messy / "tools") not in kept


def test_the_environment_runenv_runs_from_and_the_active_venv_are_never_offered(messy, run_cli, monkeypatch, tmp_path):
    import sys

    own = messy / "runner-env"
    make_venv(own)
    (own / "pyvenv.cfg").write_text("home = /usr/bin\n")
    monkeypatch.setattr(sys, "prefix", str(own))  # as when runenv is installed in a venv inside the workspace
    monkeypatch.setenv("VIRTUAL_ENV", str(messy / ".venv"))
    data = run_cli("-w", messy, "-o", "json", "cleanup", "--remnants", "--dry-run").json()
    offered = {i["path"] for i in data["items"] if i["kind"] == "remnant"}
    assert offered == {str(messy / "python-3.12.10" / "env-win")}
    in_use = {k["path"] for k in data["kept"] if "runs from" in k["reason"]}
    assert in_use == {str(own), str(messy / ".venv")}
    data = run_cli("-w", messy, "-o", "json", "cleanup", "--remnants").json()
    assert own.is_dir() and (messy / ".venv").is_dir() and not (messy / "python-3.12.10" / "env-win").exists()


def test_cleanup_run_from_the_workspace_s_own_venv_does_not_list_it(messy) -> None:
    """The real thing: a venv made with `python -m venv` inside the workspace runs runenv; it is never offered."""
    import subprocess
    import sys

    venv = messy / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}  # found by sys.prefix alone
    result = run_runenv(
        "-w", messy, "-o", "json", "cleanup", "--dry-run", "--remnants", env=env, python=venv / "bin" / "python"
    )
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    offered = {i["path"] for i in data["items"]}
    assert str(venv) not in offered and not any(p.startswith(f"{venv}{os.sep}") for p in offered)
    assert str(messy / "python-3.12.10" / "env-win") in offered  # another venv still is
    assert {k["path"]: k["reason"] for k in data["kept"]}[str(venv)].startswith("the environment runenv runs from")


def test_packing_dirs_in_dist_go_only_when_their_build_is_dead(make_workspace, run_cli):
    pytest.importorskip("fcntl")
    ws = make_workspace()
    dist = ws / "dist"
    live, dead, unmarked = (dist / f".python-3.12.10-linux-x64.{n}.tmp" for n in ("live", "dead", "unmarked"))
    for path in (live, dead, unmarked):
        path.mkdir(parents=True)
        (path / "python-3.12.10-linux-x64.tar.gz").write_bytes(b"t" * 10)
    os.close(mark(dead))
    holder = mark(live)
    try:
        data = run_cli("-w", ws, "-o", "json", "cleanup").json()
    finally:
        os.close(holder)
    assert [Path(i["path"]).name for i in data["items"]] == [dead.name]
    assert {Path(k["path"]).name: k["reason"] for k in data["kept"]} == {
        live.name: "in use by a running runenv",
        unmarked.name: "no runenv owner marker: not made by runenv",
    }
    assert live.is_dir() and unmarked.is_dir() and not dead.exists()
