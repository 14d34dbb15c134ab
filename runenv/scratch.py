"""Where builds stage runtimes and verify unpacks them: RAM-backed when it has room, else the workspace.

A runtime is tens of thousands of small files written, read once and deleted; on a VM disk each
costs about a millisecond, in tmpfs a tenth of that. Each scratch directory carries an owner lock
(runenv/owner.py) for as long as a runenv process uses it, so a later runenv removes what a killed one
(SIGKILL, power loss) left behind without touching directories that are still in use or not runenv's.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from runenv import owner, settings
from runenv.errors import BuildError

SCRATCH_ENV = settings.SCRATCH_ENV
RAM_DIR = Path("/dev/shm")
RAM_MIN_FREE = 6 << 30  # a large data-science runtime staged (~0.7 GB) and unpacked again, several at once
PREFIX = "runenv-"  # every scratch directory's name starts so; sweeps touch nothing else
KINDS = ("build", "verify")  # the subdirectories of a scratch root


def _mem_available(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Bytes of memory the kernel could hand out without swapping (0 when unknown)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _private_dir(path: Path) -> bool:
    """`path` is (made) a real directory of this user's that nobody else can write to."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def ram_scratch(
    ram: Path = RAM_DIR, min_free: int = RAM_MIN_FREE, meminfo: Path = Path("/proc/meminfo")
) -> Path | None:
    """`<ram>/runenv-<uid>` when `ram` is a writable tmpfs that allows executables, with `min_free` bytes
    free in it and in memory, and that directory is this user's alone (`ram` is shared by every user)."""
    if not owner.FLOCK or not ram.is_dir() or not os.access(ram, os.W_OK | os.X_OK):
        return None
    try:
        st = os.statvfs(ram)
    except OSError:
        return None
    if st.f_flag & os.ST_NOEXEC:  # e.g. Docker's /dev/shm: the staged interpreter could not run
        return None
    if st.f_bavail * st.f_frsize < min_free or _mem_available(meminfo) < min_free:
        return None
    root = ram / f"runenv-{os.getuid()}"
    return root if _private_dir(root) else None


def scratch_root(state_dir: Path) -> Path:
    """`RUNENV_SCRATCH_DIR` if set, else RAM-backed scratch when it has room, else the workspace's `.runenv/`."""
    explicit = settings.current().scratch_dir
    if explicit:
        return Path(explicit).expanduser().resolve()
    return ram_scratch(RAM_DIR) or state_dir


def leftovers(parent: Path) -> list[Path]:
    """runenv's scratch directories in `parent` whose process is gone."""
    return owner.dead_dirs(parent, PREFIX)


def sweep(parent: Path) -> list[Path]:
    """Remove runenv's scratch directories in `parent` whose process is gone; returns what was removed."""
    return owner.sweep_dirs(parent, PREFIX)


@contextlib.contextmanager
def scratch_dir(parent: Path, name: str) -> Iterator[Path]:
    """A new directory `runenv-<name>.*` in `parent`, owned (flock) while the block runs and removed after it.

    Leftovers of dead runenv processes in `parent` are swept first.
    """
    try:
        sweep(parent)
        path, fd = owner.make_owned_dir(parent, f"{PREFIX}{name}.")
    except OSError as exc:
        raise BuildError(
            f"cannot make a scratch directory in {parent}: {exc.strerror or exc}",
            hint=f"set {SCRATCH_ENV} to a writable directory",
        ) from None
    try:
        yield path
    finally:
        owner.release(path, fd)
