"""Scratch directories: where staging and verify go, owner locks, and sweeping what killed runs left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runenv import owner, scratch
from runenv.errors import BuildError
from runenv.owner import OWNER
from runenv.scratch import SCRATCH_ENV, ram_scratch, scratch_dir, scratch_root, sweep

pytestmark = pytest.mark.skipif(not owner.FLOCK, reason="owner locks need flock (POSIX)")

HOLDER = """
import sys
from pathlib import Path
from runenv.scratch import scratch_dir
with scratch_dir(Path(sys.argv[1]), "job") as path:
    print(path, flush=True)
    if sys.argv[2] == "die":
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.read()  # hold the directory until the test closes stdin
"""


def meminfo(tmp_path: Path, available_kib: int) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       99999999 kB\nMemAvailable:   {available_kib} kB\n")
    return path


def holder(parent: Path, mode: str) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(parent), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_explicit_scratch_dir_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(SCRATCH_ENV, str(tmp_path / "mine"))
    assert scratch_root(tmp_path / ".runenv") == (tmp_path / "mine").resolve()


def test_without_ram_room_the_workspace_state_dir_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv(SCRATCH_ENV)
    monkeypatch.setattr(scratch, "RAM_DIR", tmp_path / "no-such-ram-disk")
    assert scratch_root(tmp_path / ".runenv") == tmp_path / ".runenv"


def test_ram_scratch_needs_room_on_the_disk_and_in_memory(tmp_path):
    ram = tmp_path / "shm"
    ram.mkdir()
    plenty = meminfo(tmp_path, 64 << 20)  # 64 GiB
    assert ram_scratch(ram, min_free=1 << 20, meminfo=plenty) == ram / f"runenv-{os.getuid()}"
    free = os.statvfs(ram).f_bavail * os.statvfs(ram).f_frsize
    assert ram_scratch(ram, min_free=free + (1 << 30), meminfo=plenty) is None  # file system too full
    assert ram_scratch(ram, min_free=1 << 20, meminfo=meminfo(tmp_path, 512)) is None  # memory too tight
    assert ram_scratch(tmp_path / "missing", min_free=1, meminfo=plenty) is None


def test_scratch_dir_is_removed_after_use_and_after_errors(tmp_path):
    with scratch_dir(tmp_path / "build", "job") as path:
        (path / "file").write_text("x")
        assert (path / OWNER).is_file()
    assert not path.exists()
    with pytest.raises(RuntimeError), scratch_dir(tmp_path / "build", "job") as path:
        raise RuntimeError("step failed")
    assert not path.exists()


def test_leftover_of_a_killed_run_is_swept_but_a_live_one_is_kept(tmp_path):
    parent = tmp_path / "build"
    dead, dead_dir = holder(parent, "die")
    assert dead.wait(timeout=30) == -signal.SIGKILL
    assert dead_dir.is_dir()  # nothing cleaned up after SIGKILL
    live, live_dir = holder(parent, "hold")
    try:
        assert not dead_dir.exists()  # the live run's scratch_dir swept the dead one
        assert sweep(parent) == []
        assert live_dir.is_dir()
    finally:
        live.communicate("", timeout=30)
    assert not live_dir.exists()


def test_sweep_removes_only_directories_runenv_marked_whatever_their_age(tmp_path):
    """A `runenv-*` directory without runenv's owner marker is someone else's: never removed, however old."""
    parent = tmp_path / "verify"
    unowned, stranger, other, dead = (
        parent / "runenv-job.unowned",
        parent / "runenv-job.stranger",
        parent / "keep-me",
        parent / "runenv-job.dead",
    )
    for path in (unowned, stranger, other, dead):
        path.mkdir(parents=True)
        (path / "data").write_text("precious")
    (stranger / OWNER).write_text("someone else's lock file\n")  # the name, but not runenv's marker
    fd = owner.mark(other)
    os.close(fd)  # runenv's marker with a free lock, but not a scratch directory's name
    os.close(owner.mark(dead))  # what a killed run leaves: the marker, nobody holding the lock
    past = time.time() - 30 * 86400
    for path in (unowned, stranger, other):
        os.utime(path, (past, past))
    assert scratch.leftovers(parent) == [dead]
    assert sweep(parent) == [dead]
    assert all((path / "data").read_text() == "precious" for path in (unowned, stranger, other))


def test_a_directory_being_made_or_held_is_live(tmp_path):
    held = tmp_path / "runenv-job.held"
    held.mkdir()
    fd = owner.mark(held)
    try:
        assert owner.state(held) == "live" and sweep(tmp_path) == []
    finally:
        os.close(fd)
    assert owner.state(held) == "dead"
    assert owner.state(tmp_path / "nothing") == "foreign"


def test_ram_scratch_is_a_private_directory_of_this_user(tmp_path):
    ram = tmp_path / "shm"
    ram.mkdir()
    plenty = meminfo(tmp_path, 64 << 20)
    root = ram_scratch(ram, min_free=1 << 20, meminfo=plenty)
    assert root is not None and root.is_dir() and (root.stat().st_mode & 0o777) == 0o700
    root.chmod(0o777)  # as if another user had made it first, writable for everyone
    assert ram_scratch(ram, min_free=1 << 20, meminfo=plenty) is None
    root.rmdir()
    root.symlink_to(tmp_path)  # or planted a link to somewhere else
    assert ram_scratch(ram, min_free=1 << 20, meminfo=plenty) is None


def test_ram_scratch_is_not_used_where_programs_cannot_run(tmp_path, monkeypatch):
    """A `noexec` /dev/shm (Docker's default) would stop the staged interpreter from starting."""
    ram = tmp_path / "shm"
    ram.mkdir()
    real = os.statvfs(ram)
    fields = [
        getattr(real, name)
        for name in (
            "f_bsize",
            "f_frsize",
            "f_blocks",
            "f_bfree",
            "f_bavail",
            "f_files",
            "f_ffree",
            "f_favail",
            "f_flag",
            "f_namemax",
        )
    ]
    fields[8] |= os.ST_NOEXEC
    monkeypatch.setattr(scratch.os, "statvfs", lambda _path: os.statvfs_result(fields))
    assert ram_scratch(ram, min_free=1, meminfo=meminfo(tmp_path, 64 << 20)) is None


def test_an_unusable_scratch_dir_is_one_clear_error(tmp_path):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    with pytest.raises(BuildError, match=f"cannot make a scratch directory in {blocked}"):
        with scratch_dir(blocked / "build", "job"):
            pass


def test_killed_runs_of_any_name_are_swept(tmp_path):
    parent = tmp_path / "build"
    dead, dead_dir = holder(parent, "die")
    dead.wait(timeout=30)
    with scratch_dir(parent, "another-runtime") as mine:
        assert not dead_dir.exists() and mine.is_dir()
