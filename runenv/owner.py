"""Owner locks on runenv's temporaries, so a later runenv can tell what a killed one left from what is in use.

Every temp directory runenv makes holds a `.runenv-owner` file that starts with runenv's marker and is
flock'ed for as long as the process that made it lives; the kernel drops the lock when the process
dies, however it dies (SIGKILL, OOM, power loss). Only a directory with runenv's marker and a free lock
is ever removed: a directory without the marker is not runenv's (or is still being made) and is left
alone, whatever its name or age. Temp files (partial downloads) are locked themselves.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

if sys.platform != "win32":  # Windows has no flock, so nothing is known to be dead there and nothing is swept
    import fcntl

FLOCK = sys.platform != "win32"  # owner locks exist on this OS

OWNER = ".runenv-owner"
MARK = b"runenv owner lock\n"  # first bytes of every owner file: what tells runenv's directories from others
CLAIM = ".runenv-claim-"  # a file's name while its lock is taken; only then does it get its swept name
TEMP_PREFIX = "runenv-"  # runenv's directories in the system temp dir: `runenv-<name>.*`
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
State = Literal["live", "dead", "foreign"]


def _lock(fd: int, wait: bool) -> bool:
    """Take the exclusive lock on `fd`; False when another process holds it (and `wait` is false)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        return True
    except OSError:
        return False


def mark(directory: Path) -> int | None:
    """Make `directory` this process's: a locked owner file with the marker; returns the descriptor to keep open
    (None without flock). The file is locked before it gets its name, so no one sees it unheld."""
    if sys.platform == "win32":
        return None
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f"{OWNER}.")
    try:
        _lock(fd, wait=True)
        os.write(fd, MARK + f"pid {os.getpid()}\n".encode())
        os.rename(temp, directory / OWNER)
    except BaseException:
        os.close(fd)
        Path(temp).unlink(missing_ok=True)
        raise
    return fd


def _claim_dead(directory: Path) -> int | None:
    """A descriptor holding the lock of `directory`'s owner file when runenv made it and its process is gone."""
    if sys.platform == "win32":
        return None
    try:
        fd = os.open(directory / OWNER, os.O_RDWR | NOFOLLOW)
    except OSError:  # no owner file: not runenv's, or still being made; unreadable: not ours to judge
        return None
    if os.read(fd, len(MARK)) == MARK and _lock(fd, wait=False):
        return fd
    os.close(fd)
    return None


def state(directory: Path) -> State:
    """`live` (its runenv process holds the lock, or it cannot be told), `dead` (runenv's, owner gone) or
    `foreign` (no runenv owner marker: never removed)."""
    if sys.platform == "win32":
        return "live"
    fd = _claim_dead(directory)
    if fd is not None:
        os.close(fd)
        return "dead"
    try:
        with open(directory / OWNER, "rb") as fh:
            return "live" if fh.read(len(MARK)) == MARK else "foreign"
    except PermissionError:
        return "live"
    except OSError:
        return "foreign"


def _named(parent: Path, prefix: str, suffix: str) -> list[Path]:
    """Real (not symlinked) children of `parent` named `prefix…suffix`."""
    try:
        children = sorted(parent.iterdir()) if not parent.is_symlink() else []
    except OSError:  # missing, or not ours to list
        return []
    return [
        child
        for child in children
        if child.name.startswith(prefix) and child.name.endswith(suffix) and not child.is_symlink()
    ]


def _dead(candidates: list[Path], claim: Callable[[Path], int | None], remove: bool) -> list[Path]:
    """The candidates whose lock `claim` can take (their process is gone), removed while it is held if `remove`."""
    found = []
    for path in candidates:
        fd = claim(path)
        if fd is None:
            continue
        try:
            if remove:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            found.append(path)
        finally:
            os.close(fd)
    return found


def dead_dirs(parent: Path, prefix: str, suffix: str = "", *, remove: bool = False) -> list[Path]:
    """runenv's directories `prefix…suffix` in `parent` whose process is gone (removed with `remove`: each while
    holding its lock, so no one else takes it for live or dead meanwhile)."""
    return _dead([c for c in _named(parent, prefix, suffix) if c.is_dir()], _claim_dead, remove)


def sweep_dirs(parent: Path, prefix: str, suffix: str = "") -> list[Path]:
    """Remove what `dead_dirs` finds; returns what was removed."""
    return dead_dirs(parent, prefix, suffix, remove=True)


def _claim_dead_file(path: Path) -> int | None:
    if sys.platform == "win32":
        return None
    try:
        fd = os.open(path, os.O_RDWR | NOFOLLOW)
    except OSError:
        return None
    if _lock(fd, wait=False):
        return fd
    os.close(fd)
    return None


def dead_files(directory: Path, prefix: str, *, remove: bool = False) -> list[Path]:
    """Locked temp files `prefix…` in `directory` whose writer is gone (removed with `remove`)."""
    return _dead([p for p in _named(directory, prefix, "") if p.is_file()], _claim_dead_file, remove)


def sweep_files(directory: Path, prefix: str) -> list[Path]:
    """Remove the temp files `prefix…` in `directory` whose writer is gone."""
    return dead_files(directory, prefix, remove=True)


def locked_file(directory: Path, prefix: str) -> tuple[int, Path]:
    """A new empty file `prefix…` in `directory`, open and locked: (descriptor, path). Close the descriptor only
    once the file has been renamed away or removed."""
    fd, temp = tempfile.mkstemp(dir=directory, prefix=CLAIM)
    if sys.platform != "win32":
        _lock(fd, wait=True)
    path = directory / f"{prefix}{Path(temp).name.removeprefix(CLAIM)}"
    os.rename(temp, path)
    return fd, path


def make_owned_dir(parent: Path, prefix: str, suffix: str = "") -> tuple[Path, int | None]:
    """A new directory `prefix…suffix` in `parent` (made if missing) and the descriptor holding its owner lock."""
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=suffix)).resolve()
    try:
        return path, mark(path)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def release(path: Path, fd: int | None) -> None:
    """Remove an owned directory, then drop its lock."""
    shutil.rmtree(path, ignore_errors=True)
    if fd is not None:
        os.close(fd)


@contextlib.contextmanager
def owned_dir(parent: Path, prefix: str, suffix: str = "", *, sweep: str | None = None) -> Iterator[Path]:
    """A new directory `prefix…suffix` in `parent`, owned while the block runs and removed after it.

    What dead runs left in `parent` under the names `sweep…suffix` (default: `prefix…suffix`) goes first.
    """
    sweep_dirs(parent, prefix if sweep is None else sweep, suffix)
    path, fd = make_owned_dir(parent, prefix, suffix)
    try:
        yield path
    finally:
        release(path, fd)


def discard(directory: Path, trash_parent: Path, prefix: str) -> None:
    """Move a damaged cache entry out of its place at once, then remove it.

    The rename is one step, so a run killed while removing never leaves part of an entry where a later run
    would look; what it left in the owned trash directory is swept like any dead run's. An entry removed
    meanwhile by another run is fine.
    """
    with owned_dir(trash_parent, prefix) as trash:
        try:
            os.rename(directory, trash / "damaged")
        except FileNotFoundError:
            pass


@contextlib.contextmanager
def temp_dir(name: str) -> Iterator[Path]:
    """An owned `runenv-<name>.*` directory in the system temp dir; dead runs' `runenv-*` there are swept first."""
    with owned_dir(Path(tempfile.gettempdir()), f"{TEMP_PREFIX}{name}.", sweep=TEMP_PREFIX) as path:
        yield path
