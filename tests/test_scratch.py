"""Scratch directories: where staging and verify go, owner locks, and sweeping what killed runs left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runenv import scratch
from runenv.scratch import OWNER, SCRATCH_ENV, ram_scratch, scratch_dir, scratch_root, sweep

pytestmark = pytest.mark.skipif(scratch.fcntl is None, reason="owner locks need flock (POSIX)")

HOLDER = """
import sys
from pathlib import Path
from runenv.scratch import scratch_dir
with scratch_dir(Path(sys.argv[1]), "job.") as path:
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
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(parent), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
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
    with scratch_dir(tmp_path / "build", "job.") as path:
        (path / "file").write_text("x")
        assert (path / OWNER).is_file()
    assert not path.exists()
    with pytest.raises(RuntimeError), scratch_dir(tmp_path / "build", "job.") as path:
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
        assert sweep(parent, "job.") == []
        assert live_dir.is_dir()
    finally:
        live.communicate("", timeout=30)
    assert not live_dir.exists()


def test_sweep_spares_young_unowned_directories_and_other_names(tmp_path):
    parent = tmp_path / "verify"
    young, old, other = parent / "job.young", parent / "job.old", parent / "keep-me"
    for path in (young, old, other):
        path.mkdir(parents=True)
    past = time.time() - 3600
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    assert sweep(parent, "job.") == [old]
    assert young.is_dir() and other.is_dir()
