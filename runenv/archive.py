"""Safe, streaming extraction of interpreter tarballs: nothing outside the tree, no device files."""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import queue
import shutil
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol, TypeVar

from runenv.budget import UnpackBudget
from runenv.cache import CHUNK
from runenv.errors import IntegrityError


class Hasher(Protocol):
    """What a member's bytes are also written to (hashlib's objects)."""

    def update(self, data: memoryview, /) -> None: ...


# O_EXCL also refuses an existing symlink at the path, so a file is never written through one.
CREATE_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
T = TypeVar("T")


def open_compressed(path: Path) -> IO[bytes]:
    """A decompressing reader for `.tar.gz` (ISA-L, fast), `.tar.zst` or plain `.tar`."""
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"\x1f\x8b":
        from isal import igzip

        gzip_open: Callable[..., IO[bytes]] = igzip.open  # isal's open has no annotations
        return gzip_open(path, "rb")
    if magic == b"\x28\xb5\x2f\xfd":
        try:
            import zstandard
        except ImportError:
            raise IntegrityError(f"{path.name}: zstd archives need the 'zstandard' package") from None
        return zstandard.ZstdDecompressor().stream_reader(path.open("rb"), read_across_frames=True)
    return path.open("rb")


class ReadAhead:
    """`source` read in a background thread, so decompression (which releases the GIL) overlaps the writing.

    Offers what tarfile needs of a file: read, tell and forward seek. An error in `source` is raised
    by the read that reaches it, as OSError.
    """

    def __init__(self, source: IO[bytes], depth: int = 4) -> None:
        self._source = source
        self._blocks: queue.Queue[bytes | Exception] = queue.Queue(depth)  # b"" or an error ends the stream
        self._stop = threading.Event()
        self._block = b""
        self._at = 0  # read position in _block
        self._pos = 0  # position in the whole stream
        self._ended = False
        self._failure: Exception | None = None
        self._thread = threading.Thread(target=self._fill, name="runenv-read-ahead", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        while not self._stop.is_set():
            try:
                item: bytes | Exception = self._source.read(CHUNK)
            except Exception as exc:  # handed to the reading thread
                item = exc
            while not self._stop.is_set():
                try:
                    self._blocks.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not isinstance(item, bytes) or not item:
                return

    def _next_block(self) -> bool:
        """Move on to the next block; False at the end of the source."""
        if not self._ended:
            item = self._blocks.get()
            if isinstance(item, bytes) and item:
                self._block, self._at = item, 0
                return True
            self._ended = True
            self._failure = item if isinstance(item, Exception) else None
        if self._failure is not None:
            raise OSError(str(self._failure)) from self._failure
        return False

    def read(self, size: int) -> bytes:
        """The next `size` bytes; fewer only at the end of the stream."""
        start = self._at
        if start + size <= len(self._block):  # most reads: a header, or a member within one block
            self._at += size
            self._pos += size
            return self._block[start : start + size]
        parts = []
        while size > 0 and (self._at < len(self._block) or self._next_block()):
            part = self._block[self._at : self._at + size]
            self._at += len(part)
            size -= len(part)
            parts.append(part)
        data = b"".join(parts)
        self._pos += len(data)
        return data

    def write_to(self, fd: int, size: int, hasher: Hasher | None = None) -> None:
        """Write the next `size` bytes to the file `fd`, straight from the blocks (no copy), and to `hasher`."""
        while size > 0:
            if self._at == len(self._block) and not self._next_block():
                raise tarfile.ReadError("unexpected end of data")
            with memoryview(self._block) as block:
                written = os.write(fd, block[self._at : self._at + size])
                if hasher is not None:
                    hasher.update(block[self._at : self._at + written])
            self._at += written
            self._pos += written
            size -= written

    def tell(self) -> int:
        return self._pos

    def write(self, data: bytes) -> int:
        """Part of the file interface tarfile expects; this stream only reads."""
        raise io.UnsupportedOperation("read-ahead stream is read-only")

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET or offset < self._pos:
            raise OSError("read-ahead stream seeks forward only")
        while self._pos < offset and self.read(min(offset - self._pos, CHUNK)):
            pass
        return self._pos

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._source.close()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# tarfile's header errors that mean damage (its EOF and empty-header errors mean the end); typeshed omits them
DAMAGED_HEADER: tuple[type[Exception], ...] = tuple(
    vars(tarfile)[name] for name in ("InvalidHeaderError", "TruncatedHeaderError")
)


class StrictTarInfo(tarfile.TarInfo):
    """A damaged header is an error; tarfile alone would take it for the end of the archive."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> StrictTarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except DAMAGED_HEADER as exc:
            raise tarfile.ReadError(f"{exc} at offset {tarfile_.offset}") from None


def member_target(name: str, strip: str | None) -> str | None:
    """The member's normalised path below the stripped top directory; None for the top directory itself."""
    norm = posixpath.normpath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ValueError("absolute path")
    if norm == ".." or norm.startswith("../") or "/../" in f"/{name}/".replace("\\", "/"):
        raise ValueError("path leaves the archive ('..')")
    if strip is None:
        return None if norm == "." else norm
    if norm == strip:
        return None
    if not norm.startswith(strip + "/"):
        raise ValueError(f"outside the top-level directory {strip}/")
    return norm[len(strip) + 1 :]


def _inside(rel_dir: str, link: str) -> bool:
    """Whether a relative symlink `link` placed in `rel_dir` stays within the tree."""
    if link.startswith("/") or not link:
        return False
    resolved = posixpath.normpath(posixpath.join(rel_dir, link))
    return resolved != ".." and not resolved.startswith("../")


def _within(root: str, path: str) -> bool:
    """Whether the normalised absolute `path` is `root` or below it."""
    return path == root or path.startswith(os.path.join(root, ""))


def _check(member: tarfile.TarInfo, rel: str) -> None:
    if member.issym():
        if not _inside(posixpath.dirname(rel), member.linkname):
            raise ValueError(f"symlink to {member.linkname!r} points outside the tree")
    elif member.islnk():
        member_target(member.linkname, None)  # raises on absolute or '..'
    elif not (member.isfile() or member.isdir()):
        raise ValueError("device, fifo or other special file")


def extract(
    archive: Path, dest: Path, *, label: str, strip: str | None = "python", digests: dict[str, str] | None = None
) -> None:
    """Unpack `archive` into `dest` (made if missing), dropping the top-level `strip/` directory. With
    `digests`, the sha256 of each regular file's bytes goes there as they are written, under its POSIX path
    relative to `dest` (a symlink's under `symlink:` and its target; a sparse member's is left out).

    A hostile member (absolute path, `..`, link leaving the tree, special file) raises IntegrityError
    naming the archive and the member; so do damaged data and members declaring more bytes than the
    archive may unpack (runenv/budget.py), before any of theirs are written. `dest` is then removed.
    """
    dest.mkdir(parents=True, exist_ok=True)
    budget = UnpackBudget(archive, dest, label)
    root = str(dest.resolve())
    verified = {root}  # directories already proven to be real and inside the tree
    links: list[tuple[str, str]] = []  # (path, member name) of every symlink written
    try:
        with (
            ReadAhead(open_compressed(archive)) as stream,
            tarfile.open(
                fileobj=stream,
                mode="r:",
                tarinfo=StrictTarInfo,
            ) as tar,
        ):
            for member in tar:
                try:
                    rel = member_target(member.name, strip)
                    if rel is None:
                        continue
                    _check(member, rel)
                    if member.islnk():
                        source = member_target(member.linkname, strip)
                        if source is None:
                            raise ValueError("hard link to the top directory")
                        member.linkname = source
                except ValueError as exc:
                    raise IntegrityError(f"{label}: refusing member {member.name!r}: {exc}") from None
                if member.isfile():
                    budget.take(member.name, member.size)
                digest = _write_member(tar, stream, member, root, rel, label, verified, digests is not None)
                if digests is not None and member.islnk() and member.linkname in digests:
                    digests[rel] = digests[member.linkname]  # the bytes of the file it links to
                elif digests is not None and digest is not None:
                    digests[rel] = digest
                if member.issym():
                    links.append((os.path.join(root, rel), member.name))
            # A link judged by its text when written can be redirected by links written after it.
            for path, name in links:
                if not _within(root, os.path.realpath(path)):
                    raise IntegrityError(f"{label}: refusing member {name!r}: symlink points outside the tree")
            while stream.read(CHUNK):  # to the end, so that gzip's CRC and length are checked
                pass
    except tarfile.TarError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise IntegrityError(f"{label}: not a valid tar archive: {exc}") from None
    except (OSError, EOFError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise IntegrityError(f"{label}: cannot unpack: {exc}") from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _write_member(
    tar: tarfile.TarFile,
    stream: ReadAhead,
    member: tarfile.TarInfo,
    root: str,
    rel: str,
    label: str,
    verified: set[str],
    hashed: bool = False,
) -> str | None:
    """Write one member; with `hashed`, returns the digest of what it holds (None for a directory)."""
    target = os.path.join(root, rel)
    # Links already written may redirect a later member; judge by where the bytes would really land.
    parent = os.path.dirname(target)
    if parent in verified:
        real_parent = parent  # a real directory inside the tree stays one: members never replace directories
    else:
        os.makedirs(parent, exist_ok=True)
        real_parent = os.path.realpath(parent)
        if not _within(root, real_parent):
            raise IntegrityError(f"{label}: refusing member {member.name!r}: written through a link leaving the tree")
        if real_parent == parent:
            verified.add(parent)
    if member.issym() and not _within(root, os.path.normpath(os.path.join(real_parent, member.linkname))):
        raise IntegrityError(f"{label}: refusing member {member.name!r}: symlink points outside the tree")
    if member.isdir():
        try:
            os.mkdir(target)
        except FileExistsError:
            if not os.path.isdir(target):
                raise
        else:
            if real_parent == parent:
                verified.add(target)
    elif member.issym():
        _create(target, lambda path: os.symlink(member.linkname, path), member, label)
        return "symlink:" + member.linkname if hashed else None
    elif member.islnk():
        source = os.path.join(root, member.linkname)

        def link(path: str) -> None:
            if os.path.islink(source) or not os.path.isfile(source):
                raise IntegrityError(f"{label}: hard link {member.name!r} to a missing or non-regular member")
            if not _within(root, os.path.realpath(source)):  # reached through links that leave the tree
                raise IntegrityError(f"{label}: refusing member {member.name!r}: hard link to a file outside the tree")
            os.link(source, path)

        _create(target, link, member, label)
    else:
        mode = 0o755 if member.mode & 0o111 else 0o644
        fd = _create(target, lambda path: os.open(path, CREATE_FILE, mode), member, label)
        hasher = hashlib.sha256() if hashed and member.sparse is None else None
        try:
            _copy_data(tar, stream, member, fd, hasher)
        finally:
            os.close(fd)
        os.chmod(target, mode)  # exactly this mode, whatever the umask
        return None if hasher is None else hasher.hexdigest()
    return None


def _create(target: str, make: Callable[[str], T], member: tarfile.TarInfo, label: str) -> T:
    """`make(target)`; a member seen before is replaced (unless it is a directory) and made again."""
    try:
        return make(target)
    except FileExistsError:
        if os.path.isdir(target) and not os.path.islink(target):
            raise IntegrityError(f"{label}: member {member.name!r} replaces a directory") from None
        os.unlink(target)
        return make(target)


def _copy_data(
    tar: tarfile.TarFile, stream: ReadAhead, member: tarfile.TarInfo, fd: int, hasher: Hasher | None = None
) -> None:
    """Write the member's bytes to `fd` (and to `hasher`, for a member that is not sparse) from `stream`, the
    archive `tar` reads."""
    if member.sparse is None:
        stream.seek(member.offset_data)
        stream.write_to(fd, member.size, hasher)
    else:  # tarfile knows where the holes go
        with tar.extractfile(member) as source, open(fd, "wb", closefd=False) as out:  # type: ignore[union-attr]
            shutil.copyfileobj(source, out, CHUNK)
