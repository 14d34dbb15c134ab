"""The content-addressed cache shared by every runtime and platform: `<cache>/sha256/<hex>`."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from runenv.errors import IntegrityError
from runenv.files import write_text_atomic

CHUNK = 1 << 20
# What runenv creates inside its cache directory; cleanup removes these and nothing else there.
CACHE_ENTRIES = ("sha256", "refs", "tmp", "runtimes", "artifacts", "stamps", "vcs", "vcs-wheels")


def default_cache_dir() -> Path:
    """`RUNENV_CACHE_DIR`, else the platform's user cache directory."""
    env = os.environ.get("RUNENV_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("runenv", appauthor=False))


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
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp

    @contextlib.contextmanager
    def writer(self, expected_sha256: str | None, what: str) -> Iterator[HashingWriter]:
        """Write a blob; on success it lands at `path(sha)`, on any failure nothing is left behind.

        With `expected_sha256` a mismatch raises IntegrityError naming `what`.
        After the block, the writer's `.sha256` attribute holds the blob's hash.
        """
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp_dir(), prefix="part-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                writer = HashingWriter(fh)
                yield writer
            actual = writer.digest.hexdigest()
            if expected_sha256 and actual != expected_sha256.lower():
                raise IntegrityError(
                    f"sha256 mismatch for {what}: expected {expected_sha256.lower()}, got {actual}",
                    hint="the source changed or is corrupt; nothing was cached",
                )
            final = self.path(actual)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            writer.sha256 = actual  # type: ignore[attr-defined]
        finally:
            tmp.unlink(missing_ok=True)

    def add_file(self, source: Path, expected_sha256: str | None = None) -> Path:
        """Copy a local file into the cache (verified when a hash is given); returns its cache path."""
        with source.open("rb") as src, self.writer(expected_sha256, str(source)) as out:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                out.write(chunk)
        return self.path(out.sha256)  # type: ignore[attr-defined]

    # A small map from URL to content hash, for documents that carry no pinned hash (SHA256SUMS).
    def remember(self, key: str, sha256: str) -> None:
        ref = self.root / "refs" / hashlib.sha256(key.encode()).hexdigest()
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
