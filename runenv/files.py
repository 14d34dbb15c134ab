"""Small file-system primitives shared by the stages: atomic writes, directories published whole, and moves that
may cross file systems."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from runenv.errors import UsageError

COPY_CHUNK = 1 << 20


def usable_dir(path: Path, what: str) -> Path:
    """`path` resolved, when it is a writable directory or can be made as one in an existing writable directory;
    otherwise UsageError naming `what` (so a bad path is refused before anything is written)."""
    resolved = path.expanduser().resolve()
    if resolved.exists():
        target = resolved
    elif resolved.parent.is_dir():
        target = resolved.parent
    else:
        above = next((p for p in resolved.parents if p.exists()), None)
        problem = (
            f"{above} is not a directory"
            if above is not None and not above.is_dir()
            else f"its parent {resolved.parent} does not exist"
        )
        raise UsageError(f"{what} {path}: {problem}", hint="point it at a directory, or create the parent first")
    if not target.is_dir():
        raise UsageError(f"{what} {path}: {target} is not a directory", hint="point it at a directory")
    if not os.access(target, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: {target} is not writable", hint="point it at a directory you can write to")
    return resolved


@contextlib.contextmanager
def atomic_file(
    path: Path, mode: int = 0o644, *, sync: bool = False, exclusive: bool = False, suffix: str = ".tmp"
) -> Iterator[IO[bytes]]:
    """A temp file `.<name>.<random><suffix>` beside `path`, renamed onto it (with `mode`) when the block succeeds
    and removed when it fails.

    Beside the target, so the rename never crosses a file system; no reader ever sees a partial file.
    With `sync` the bytes reach the disk before the rename; with `exclusive` an existing `path` is never
    replaced (FileExistsError instead, also when it appeared while the block ran).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if exclusive:
            os.link(tmp, path)  # unlike a rename, fails when `path` exists
        else:
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temp file beside it; no partial file is ever seen."""
    with atomic_file(path) as fh:
        fh.write(text.encode("utf-8"))
    return path


def publish_dir(staged: Path, final: Path, published: Callable[[Path], bool] = Path.is_dir) -> bool:
    """Rename the fully built directory `staged` to `final` (its parent made if missing); True when ours landed.

    When the rename fails but `published(final)` holds, another process got there first: `staged` is removed and
    False returned. Otherwise the OSError is raised, and nothing partial is ever at `final`.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staged, final)
        return True
    except OSError:
        if not published(final):
            raise
    shutil.rmtree(staged, ignore_errors=True)
    return False


def move_into_place(source: Path, dest: Path) -> Path:
    """Move the file `source` onto `dest` atomically, also across file systems (then copied, synced and renamed
    in beside `dest`, and `source` removed); returns `dest`."""
    try:
        os.replace(source, dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        with source.open("rb") as src, atomic_file(dest, stat.S_IMODE(os.stat(source).st_mode), sync=True) as out:
            shutil.copyfileobj(src, out, COPY_CHUNK)
        source.unlink()
    return dest
