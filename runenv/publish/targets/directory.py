"""The directory target: `<root>/<runtime>/<platform>/<file>`, every file written under a temp name then renamed."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from runenv.cache import CHUNK, sha256_file
from runenv.errors import PublishError
from runenv.files import atomic_file
from runenv.publish.artifacts import LocalArtifact
from runenv.publish.catalogue import (
    CATALOGUE_NAME,
    Catalogue,
    Entries,
    merge_catalogue,
    parse_catalogue,
    render_catalogue,
)
from runenv.publish.targets.base import Progress, RemoteFile, artifact_dir, file_location

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

LOCK_NAME = f".{CATALOGUE_NAME}.lock"


class DirectoryTarget:
    """A local or mounted directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.display = str(self.root)

    def _path(self, artifact: LocalArtifact, name: str) -> Path:
        return self.root / artifact_dir(artifact) / name

    def lookup(self, artifact: LocalArtifact) -> RemoteFile | None:
        path = self._path(artifact, artifact.filename)
        if not path.is_file():
            return None
        return RemoteFile(path.stat().st_size, sha256_file(path))

    def upload(self, artifact: LocalArtifact, progress: Progress) -> RemoteFile:
        for source in artifact.files():
            self._write(self._path(artifact, source.name), source, progress if source == artifact.tarball else None)
        remote = self.lookup(artifact)
        if remote is None:
            raise PublishError(f"{artifact.filename} is not in {self.root} after it was written")
        return remote

    def location(self, artifact: LocalArtifact) -> dict[str, str]:
        return file_location(artifact)

    def read_catalogue(self) -> Catalogue | None:
        path = self.root / CATALOGUE_NAME
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PublishError(f"cannot read {path}: {exc.strerror}") from None
        return parse_catalogue(data, str(path))

    def write_catalogue(self, catalogue: Catalogue) -> None:
        self._write_bytes(self.root / CATALOGUE_NAME, render_catalogue(catalogue))

    def add_to_catalogue(self, entries: Entries) -> None:
        """Read, merge and replace index.json holding an exclusive lock on `.index.json.lock` beside it."""
        with exclusive_lock(self.root / LOCK_NAME):
            merge_catalogue(self, entries)

    def close(self) -> None:
        pass

    def _write(self, dest: Path, source: Path, progress: Progress | None) -> None:
        with temp_beside(dest) as out, source.open("rb") as src:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                out.write(chunk)
                if progress:
                    progress(len(chunk))

    def _write_bytes(self, dest: Path, data: bytes) -> None:
        with temp_beside(dest) as out:
            out.write(data)


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive OS lock on `path` (flock; msvcrt on Windows) while the block runs; waits for other holders.

    The lock file stays: removing it would let a waiter lock a file that a newcomer no longer sees.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise PublishError(f"cannot lock {path}: {exc.strerror}") from None
    try:
        try:
            if sys.platform == "win32":
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for 10 s, then raises OSError
            else:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise PublishError(f"cannot lock {path}: {exc.strerror}", hint="another publish may be stuck") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def temp_beside(dest: Path) -> Iterator[IO[bytes]]:
    """An open temp file beside `dest`, renamed onto it on success and removed on failure."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot write in {dest.parent}: {exc.strerror}") from None
    try:
        with atomic_file(dest) as out:
            yield out
    except OSError as exc:
        raise PublishError(f"cannot write {dest}: {exc.strerror}") from None
