"""Where builds stage runtimes and verify unpacks them: RAM-backed when it has room, else the workspace.

A runtime is tens of thousands of small files written, read once and deleted; on a VM disk each
costs about a millisecond, in tmpfs a tenth of that. Each scratch directory holds an flock'ed
`.owner` file for as long as a runenv process uses it, so a later runenv removes what a killed one
(SIGKILL, power loss) left behind without touching directories that are still in use.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from runenv.errors import BuildError

try:
    import fcntl
except ImportError:  # Windows: no flock, so leftovers are never swept (and RAM scratch is never chosen)
    fcntl = None  # type: ignore[assignment]

SCRATCH_ENV = "RUNENV_SCRATCH_DIR"
RAM_DIR = Path("/dev/shm")
RAM_MIN_FREE = 6 << 30  # a large data-science runtime staged (~0.7 GB) and unpacked again, several at once
OWNER = ".owner"
PREFIX = "runenv-"  # every scratch directory's name starts so; sweeps touch nothing else
KINDS = ("build", "verify")  # the subdirectories of a scratch root
UNOWNED_GRACE = 600  # seconds a directory without an owner file is left alone (it may be being made)


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
    if fcntl is None or not ram.is_dir() or not os.access(ram, os.W_OK | os.X_OK):
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
    explicit = os.environ.get(SCRATCH_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser().resolve()
    return ram_scratch(RAM_DIR) or state_dir


def in_use(directory: Path, grace: float = UNOWNED_GRACE) -> bool:
    """Whether some process still holds the directory's owner lock, or it has no owner file and is younger
    than `grace` seconds (it may be being made). Without flock (Windows) nothing is known to be in use."""
    if fcntl is None:
        return False
    try:
        fd = os.open(directory / OWNER, os.O_RDWR)
    except FileNotFoundError:
        try:
            return time.time() - directory.stat().st_mtime < grace
        except OSError:
            return True
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)  # also drops the lock taken to test it


def leftovers(parent: Path) -> list[Path]:
    """runenv's scratch directories in `parent` whose process is gone."""
    if fcntl is None or not parent.is_dir():
        return []
    return [
        child
        for child in sorted(parent.iterdir())
        if child.name.startswith(PREFIX) and child.is_dir() and not child.is_symlink() and not in_use(child)
    ]


def sweep(parent: Path) -> list[Path]:
    """Remove runenv's scratch directories in `parent` whose process is gone; returns what was removed."""
    removed = leftovers(parent)
    for child in removed:
        shutil.rmtree(child, ignore_errors=True)
    return removed


def _owned_dir(parent: Path, name: str) -> tuple[Path, int | None]:
    """A new `runenv-<name>.*` directory in `parent` and the descriptor holding its owner lock."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        sweep(parent)
        path = Path(tempfile.mkdtemp(dir=parent, prefix=f"{PREFIX}{name}.")).resolve()
        if fcntl is None:
            return path, None
        # Locked before it gets its name, so a sweep never sees an owner file that is not held yet.
        fd, temp = tempfile.mkstemp(dir=path, prefix=f"{OWNER}.")
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(temp, path / OWNER)
        return path, fd
    except OSError as exc:
        raise BuildError(
            f"cannot make a scratch directory in {parent}: {exc.strerror or exc}",
            hint=f"set {SCRATCH_ENV} to a writable directory",
        ) from None


@contextlib.contextmanager
def scratch_dir(parent: Path, name: str) -> Iterator[Path]:
    """A new directory `runenv-<name>.*` in `parent`, owned (flock) while the block runs and removed after it.

    Leftovers of dead runenv processes in `parent` are swept first.
    """
    path, fd = _owned_dir(parent, name)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if fd is not None:
            os.close(fd)
