"""The content-addressed cache shared by every runtime and platform: `<cache>/sha256/<hex>`."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import importlib.metadata
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from runenv import owner, settings
from runenv.errors import IntegrityError, StepError
from runenv.files import move_into_place, usable_dir, write_text_atomic

CHUNK = 1 << 20
# What runenv creates inside its cache directory; cleanup removes these and nothing else there.
CACHE_ENTRIES = (
    "sha256",
    "refs",
    "tmp",
    "runtimes",
    "artifacts",
    "stamps",
    "vcs",
    "vcs-wheels",
    "trees",
    "verified",
    "verified-imports",
    "native",
    "packed",
)
PART_PREFIX = "part-"  # `<cache>/tmp/part-*`: a download being written (locked by its writer)
ARTIFACT_PREFIX = "artifact-"  # `<cache>/tmp/artifact-*/`: an artifact being stored for reuse (owned)


def default_cache_dir() -> Path:
    """`RUNENV_CACHE_DIR` (a directory, or one that can be made in an existing directory: else UsageError),
    else the platform's user cache directory."""
    env = settings.current().cache_dir
    if env:
        return usable_dir(Path(env), "RUNENV_CACHE_DIR")
    import platformdirs

    return Path(platformdirs.user_cache_dir("runenv", appauthor=False))


@functools.cache
def tool_versions(*distributions: str) -> str:
    """`name-version` of each installed distribution (`name-missing` when absent), for the key of a cache
    entry whose bytes those tools made: another version may make other bytes."""
    found = []
    for name in distributions:
        try:
            found.append(f"{name}-{importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name}-missing")
    return " ".join(found)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class HashingWriter:
    """A file being written whose sha256 and size are computed on the way."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self.digest.update(data)
        self.size += len(data)

    def flush(self) -> None:
        self._fh.flush()


class Cache:
    """Blobs named by their sha256; written to a temp file, verified, then renamed into place."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_cache_dir()).resolve()
        self._claims: dict[str, threading.Lock] = {}
        self._claims_guard = threading.Lock()
        self._swept = False

    def path(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256.lower()

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    @contextlib.contextmanager
    def claim(self, sha256: str) -> Iterator[None]:
        """Held while a blob is fetched, so threads sharing this cache (`build --jobs`) fetch it once."""
        with self._claims_guard:
            claim = self._claims.setdefault(sha256.lower(), threading.Lock())
        with claim:
            yield

    def _tmp_dir(self) -> Path:
        """`<cache>/tmp`, where partial downloads are written; what killed runs left there goes on first use."""
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        if not self._swept:
            owner.sweep_files(tmp, PART_PREFIX)
            self._swept = True
        return tmp

    @contextlib.contextmanager
    def _write_errors(self, what: str) -> Iterator[None]:
        """An OSError while caching `what` (the disk full, a directory that is a file) as one StepError line."""
        try:
            yield
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
            raise StepError(
                f"cannot cache {what} in {self.root}: {exc.strerror or exc}",
                hint=("its file system is full: free space" if full else "check that directory")
                + ", or point RUNENV_CACHE_DIR elsewhere; nothing was cached",
            ) from None

    @contextlib.contextmanager
    def writer(self, expected_sha256: str | None, what: str) -> Iterator[HashingWriter]:
        """Write a blob; on success it lands at `path(sha)`, on any failure nothing is left behind.

        With `expected_sha256` a mismatch raises IntegrityError naming `what`.
        After the block, the writer's `.sha256` attribute holds the blob's hash. The partial file stays
        locked until it is renamed or removed, so a sweep never takes a live download for a dead one's.
        """
        with self._write_errors(what):
            fd, tmp = owner.locked_file(self._tmp_dir(), PART_PREFIX)
        try:
            with self._write_errors(what), os.fdopen(fd, "wb", closefd=False) as fh:
                writer = HashingWriter(fh)
                yield writer
            actual = writer.digest.hexdigest()
            if expected_sha256 and actual != expected_sha256.lower():
                raise IntegrityError(
                    f"sha256 mismatch for {what}: expected {expected_sha256.lower()}, got {actual}",
                    hint="the source changed or is corrupt; nothing was cached",
                )
            final = self.path(actual)
            with self._write_errors(what):
                final.parent.mkdir(parents=True, exist_ok=True)
                move_into_place(tmp, final)
            writer.sha256 = actual  # type: ignore[attr-defined]
        finally:
            tmp.unlink(missing_ok=True)
            os.close(fd)

    def add_file(self, source: Path, expected_sha256: str | None = None) -> Path:
        """Copy a local file into the cache (verified when a hash is given); returns its cache path."""
        with source.open("rb") as src, self.writer(expected_sha256, str(source)) as out:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                out.write(chunk)
        return self.path(out.sha256)  # type: ignore[attr-defined]

    # A small map from URL to content hash, for documents that carry no pinned hash (SHA256SUMS).
    def remember(self, key: str, sha256: str) -> None:
        ref = self.root / "refs" / hashlib.sha256(key.encode()).hexdigest()
        with self._write_errors("a reference"):
            ref.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(ref, sha256)

    def recall(self, key: str) -> str | None:
        ref = self.root / "refs" / hashlib.sha256(key.encode()).hexdigest()
        try:
            sha = ref.read_text().strip()
        except FileNotFoundError:
            return None
        return sha if self.has(sha) else None

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
