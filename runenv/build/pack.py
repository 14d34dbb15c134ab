"""Deterministic, streamed runtime tarballs with their `.sha256` and manifest, written under temp names."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import stat
import struct
import tarfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Protocol

from runenv import settings
from runenv.artifact_names import (
    MANIFEST_SUFFIX,
    OUTGOING_PREFIX,
    OUTGOING_SUFFIX,
    PART_SUFFIX,
    checksum_line,
    checksum_path,
    outgoing_prefix,
    tarball_name,
)
from runenv.build.manifest import MANIFEST_NAME, Manifest
from runenv.build.packages.layers import Entry, Layer, runs
from runenv.cache import CHUNK, HashingWriter, sha256_file, tool_versions
from runenv.errors import BuildError, Cancelled, UsageError
from runenv.files import atomic_file, move_into_place, write_text_atomic
from runenv.owner import owned_dir

FALLBACK_EPOCH = 315532800  # 1980-01-01T00:00:00Z: the earliest time every archive format can store
GZIP_LEVEL = 2  # ISA-L levels run 0..3; 2 is its speed/size trade-off
GZIP_BLOCK = 1 << 20  # fixed block size: the output does not depend on the number of threads
DICTIONARY = 1 << 15  # deflate's window: each block starts with the end of the one before as its dictionary
# zstd frames are fed in whole pieces of this size (_Pieces), so their bytes do not depend on how the tar
# is read; gz runs are cut into GZIP_BLOCK blocks whatever the writes (_Encoder).
TAR_BUFFER = 1 << 16
ZSTD_LEVEL = 3
KEPT_STAGING = ".part-"  # `<cache>/packed/.part-*/`: a run being kept (owned; a dead run's is swept)
PACK_FORMAT = 2  # bump when the same layers would pack to other bytes (2: one gzip member of deflate runs)


@dataclass(frozen=True)
class PackedArtifact:
    """A finished tarball beside its checksum file and manifest."""

    path: Path
    sha256: str
    size: int
    sha256_path: Path
    manifest_path: Path


def outgoing_dir(out_dir: Path, name: str) -> contextlib.AbstractContextManager[Path]:
    """A hidden owned directory `.<name>.*.tmp` in `out_dir`, where an artifact is packed or copied and verified
    before it is moved in (same file system); what killed runs left there as such is swept first."""
    return owned_dir(out_dir, outgoing_prefix(name), OUTGOING_SUFFIX, sweep=OUTGOING_PREFIX)


def move_artifact(packed: PackedArtifact, out_dir: Path) -> PackedArtifact:
    """Move a packed artifact's files into `out_dir` (a rename: they are packed beside it); the tarball goes last."""
    moved = {}
    for path in (packed.manifest_path, packed.sha256_path, packed.path):
        moved[path] = move_into_place(path, out_dir / path.name)
    return replace(
        packed,
        path=moved[packed.path],
        sha256_path=moved[packed.sha256_path],
        manifest_path=moved[packed.manifest_path],
    )


def source_date_epoch(release: str | None = None) -> int:
    """Timestamp for every entry: SOURCE_DATE_EPOCH, else the PBS release date, else 1980-01-01."""
    env = settings.current().source_date_epoch
    if env:
        try:
            return int(env)
        except ValueError:
            raise UsageError(f"SOURCE_DATE_EPOCH={env!r} is not an integer number of seconds") from None
    if release:
        with contextlib.suppress(ValueError):
            date = datetime.strptime(release[:8], "%Y%m%d").replace(tzinfo=timezone.utc)
            return int(date.timestamp())
    return FALLBACK_EPOCH


def tar_entry(name: str, st: os.stat_result, mtime: int, link: str = "") -> tarfile.TarInfo:
    """A TarInfo with everything that varies between machines normalised away."""
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISDIR(st.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, link
    elif stat.S_ISREG(st.st_mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
        info.mode = 0o755 if st.st_mode & 0o111 else 0o644
    else:
        raise BuildError(f"cannot pack {name}: not a file, directory or symlink")
    return info


def require_compression(compression: str) -> None:
    """Refuse a compression whose optional package is missing (checked before a build starts)."""
    if compression == "zst":
        try:
            import zstandard  # noqa: F401
        except ImportError:
            raise BuildError(
                "build.compression is 'zst' but the 'zstandard' package is not installed",
                hint="pip install 'runenv[zstd]', or use build.compression 'gz'",
            ) from None


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> None: ...


def _zstd_frame(fileobj: Sink, threads: int) -> contextlib.AbstractContextManager[IO[bytes]]:
    """A writer of one zstd frame (multi-threaded; its bytes do not depend on the number of workers)."""
    import zstandard

    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=max(1, threads), write_content_size=False)
    return cctx.stream_writer(fileobj, closefd=False)  # type: ignore[arg-type]


class _Pieces:
    """Passes bytes on in whole TAR_BUFFER pieces (the last one shorter): zstd's frames must not depend on how
    the tar is read."""

    def __init__(self, out: Sink) -> None:
        self.out = out
        self.pending = bytearray()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        if self.pending:
            need = TAR_BUFFER - len(self.pending)
            self.pending += view[:need]
            view = view[need:]
            if len(self.pending) < TAR_BUFFER:
                return
            self.out.write(bytes(self.pending))
            self.pending = bytearray()
        whole = len(view) - len(view) % TAR_BUFFER
        for at in range(0, whole, TAR_BUFFER):
            self.out.write(bytes(view[at : at + TAR_BUFFER]))
        self.pending += view[whole:]

    def close(self) -> None:
        if self.pending:
            self.out.write(bytes(self.pending))
            self.pending = bytearray()


def _deflate_block(block: bytes, before: bytes) -> tuple[bytes, int]:
    """One block as raw deflate ending on a byte boundary (a sync flush, not the final block), and its CRC-32;
    `before` (the end of the run's previous block) is its dictionary."""
    from isal import isal_zlib

    if before:
        packer = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, -15, zdict=before)
    else:
        packer = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, -15)
    return packer.compress(block) + packer.flush(isal_zlib.Z_SYNC_FLUSH), int(isal_zlib.crc32(block))


class _Encoder:
    """One run's bytes compressed into `out`, with the CRC-32 and length of what went in.

    gz: raw deflate in fixed GZIP_BLOCK blocks compressed in parallel, each ending byte-aligned, so runs
    compressed apart (or kept and copied) make one deflate stream of one gzip member (write_tar adds the
    header, the final block and the trailer). zst: one zstd frame per run."""

    def __init__(self, out: Sink, compression: str, threads: int) -> None:
        self.out, self.compression, self.threads = out, compression, max(1, threads)
        self.crc, self.length = 0, 0
        self.pending = bytearray()
        self.before = b""  # the last DICTIONARY bytes of the previous block
        self.jobs: collections.deque[tuple[Future[tuple[bytes, int]], int]] = collections.deque()
        self.pool = ThreadPoolExecutor(self.threads) if compression == "gz" else None
        self.frame = self._frame() if compression == "zst" else None

    def _frame(self) -> tuple[contextlib.ExitStack, _Pieces]:
        stack = contextlib.ExitStack()
        return stack, _Pieces(stack.enter_context(_zstd_frame(self.out, self.threads)))

    def write(self, data: bytes) -> None:
        if self.frame is not None:  # zstd checks its frames itself: no CRC-32 to combine
            self.length += len(data)
            self.frame[1].write(data)
            return
        self.pending += data
        while len(self.pending) >= GZIP_BLOCK:
            self._submit(bytes(self.pending[:GZIP_BLOCK]))
            del self.pending[:GZIP_BLOCK]

    def _submit(self, block: bytes) -> None:
        if self.pool is None:
            raise ValueError(f"a {self.compression} run is not written as deflate blocks")
        self.jobs.append((self.pool.submit(_deflate_block, block, self.before), len(block)))
        self.before = block[-DICTIONARY:]
        while len(self.jobs) > 2 * self.threads:  # bounded: a few blocks in flight, whatever the run's size
            self._drain_one()

    def _drain_one(self) -> None:
        job, size = self.jobs.popleft()
        packed, block_crc = job.result()
        self.out.write(packed)
        self.crc, self.length = crc32_combine(self.crc, block_crc, size), self.length + size

    def close(self) -> tuple[int, int]:
        """Finish the run; its (CRC-32, length)."""
        if self.frame is not None:
            self.frame[1].close()
            self.frame[0].close()
        else:
            if self.pending:
                self._submit(bytes(self.pending))
                self.pending = bytearray()
            while self.jobs:
                self._drain_one()
        return self.crc, self.length

    def abandon(self) -> None:
        if self.pool is not None:
            for job, _size in self.jobs:
                job.cancel()
            self.pool.shutdown(wait=True)

    def __enter__(self) -> _Encoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abandon()


def crc32_combine(first: int, second: int, second_length: int) -> int:
    from isal import isal_zlib

    return int(isal_zlib.crc32_combine(first, second, second_length))


class _Tee:
    """Compressed bytes going to the tarball and to a kept run at once, hashed for the run's record; a kept
    side that cannot be written is given up, never the tarball."""

    def __init__(self, first: Sink, second: IO[bytes]) -> None:
        self.first, self.second = first, second
        self.digest = hashlib.sha256()
        self.size = 0
        self.broken = False

    def write(self, data: bytes) -> None:
        self.first.write(data)
        if self.broken:
            return
        try:
            self.second.write(data)
        except OSError:
            self.broken = True
        self.digest.update(data)
        self.size += len(data)

    def flush(self) -> None:
        self.first.flush()


class KeptRuns:
    """The packed run of each installed-tree layer, kept at `<cache>/packed/<key>` (the compressed bytes, with
    `<key>.json`: their sha256, size, and the CRC-32 and length of the tar bytes in them). The key digests the
    layer's cache key, the artifact's top directory (its .pyc name their sources under it), the entry time,
    the compression, its level and library versions, PACK_FORMAT, and the paths of the layer that other runs
    hold (with whether the merged tree has a directory there); a run is used only when its bytes hash to its
    record. A cache that cannot be written costs the next build its time, never this one."""

    def __init__(self, cache_root: Path) -> None:
        self.directory = cache_root / "packed"

    def key(self, layer: str, top: str, mtime: int, compression: str, elsewhere: list[tuple[str, bool]]) -> str:
        versions = tool_versions("isal", "zstandard")  # another version may compress the same bytes otherwise
        facts = [PACK_FORMAT, layer, top, mtime, compression, GZIP_LEVEL, ZSTD_LEVEL, versions, elsewhere]
        return hashlib.sha256(json.dumps(facts).encode()).hexdigest()

    def find(self, key: str) -> tuple[Path, int, int] | None:
        """The kept run's path, CRC-32 and length, when its bytes are whole."""
        path, record = self.directory / key, self.directory / f"{key}.json"
        try:
            want = json.loads(record.read_text(encoding="utf-8"))
            if path.stat().st_size == want["size"] and sha256_file(path) == want["sha256"]:
                return path, int(want["crc32"]), int(want["length"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def keep(self, key: str, out: Sink, write: Callable[[Sink], tuple[int, int]]) -> tuple[int, int]:
        """`write(sink)` into `out`, keeping what it wrote under `key` when the cache takes it.

        The copy is written in an owned directory (`.part-*`), so a failed build leaves nothing and what a
        killed one left is swept by the next; a cache that cannot be written only means nothing is kept."""
        with contextlib.ExitStack() as stack:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                staging = stack.enter_context(owned_dir(self.directory, KEPT_STAGING))
                kept = stack.enter_context(open(staging / key, "wb"))
            except OSError:
                return write(out)
            tee = _Tee(out, kept)
            result = write(tee)  # an error here is the build's: the tarball's side failed
            try:
                kept.close()
                if not tee.broken:
                    os.replace(staging / key, self.directory / key)
                    record = {"sha256": tee.digest.hexdigest(), "size": tee.size}
                    record |= {"crc32": result[0], "length": result[1]}
                    write_text_atomic(self.directory / f"{key}.json", json.dumps(record))
            except OSError:
                pass  # not kept: the next build packs it again
            return result


def _write_run(
    sink: Sink,
    entries: list[Entry],
    layers: list[Layer],
    top: str,
    mtime: int,
    threads: int,
    compression: str,
    cancel: threading.Event | None,
    first: tarfile.TarInfo | None = None,
    tail: bytes = b"",
) -> tuple[int, int]:
    """`entries` as tar headers and data (then `tail`), compressed into `sink`; the CRC-32 and length of the
    tar bytes."""
    with _Encoder(sink, compression, threads) as packed:
        if first is not None:
            packed.write(first.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
        for entry in entries:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            layer = layers[entry.layer]
            path = layer.root / entry.rel
            link = os.readlink(path) if stat.S_ISLNK(entry.st.st_mode) else ""
            info = tar_entry(f"{top}/{entry.rel}", entry.st, mtime, link)
            data = layer.read(entry.rel, top) if info.isreg() else None
            if data is not None:
                info.size = len(data)
            packed.write(info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
            if not info.isreg():
                continue
            if data is not None:
                packed.write(data)
                written = len(data)
            else:
                written = 0
                with path.open("rb") as fh:
                    while chunk := fh.read(CHUNK):
                        packed.write(chunk)
                        written += len(chunk)
                if written != info.size:
                    raise OSError(f"{path} changed while it was packed")
            if written % tarfile.BLOCKSIZE:
                packed.write(tarfile.NUL * (tarfile.BLOCKSIZE - written % tarfile.BLOCKSIZE))
        if tail:
            packed.write(tail)
        return packed.close()


GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0, OS unknown
FINAL_BLOCK = b"\x03\x00"  # an empty final deflate block, after the byte-aligned runs


def write_tar(
    prefix: Path,
    top: str,
    fileobj: HashingWriter,
    mtime: int,
    threads: int,
    cancel: threading.Event | None = None,
    compression: str = "gz",
    layers: Sequence[Layer] = (),
    kept: KeptRuns | None = None,
) -> None:
    """Stream `prefix`, with `layers` laid over it, as `top/…` into a compressed tar written to `fileobj`.

    The tar is one run of entries per layer (runenv.build.packages.layers.runs), each compressed on its own: for gz, raw
    deflate ending byte-aligned, all in one gzip member (one header, one trailer whose CRC-32 combines the
    runs'); for zst, one frame per run. The run of an installed-tree layer is the same bytes in every artifact
    with the same top directory, so with `kept` it is packed once and copied after.
    """
    require_compression(compression)
    gz = compression == "gz"
    if gz:
        fileobj.write(GZIP_HEADER)
    crc, length = 0, 0
    stack = [Layer(prefix), *layers]
    cut = runs(stack)
    for index, (entries, elsewhere) in enumerate(cut):
        first = tar_entry(top, os.stat(prefix), mtime) if index == 0 else None
        last = index == len(cut) - 1
        tail = tarfile.NUL * (2 * tarfile.BLOCKSIZE) if last else b""  # the end-of-archive blocks
        key = stack[index].key
        if not entries and first is None and not tail:
            continue

        def write(sink: Sink, entries: list[Entry] = entries, first: tarfile.TarInfo | None = first) -> tuple[int, int]:
            return _write_run(sink, entries, stack, top, mtime, threads, compression, cancel, first)

        if kept is None or key is None or last:
            run = _write_run(fileobj, entries, stack, top, mtime, threads, compression, cancel, first, tail)
        else:
            run_key = kept.key(key, top, mtime, compression, elsewhere)
            found = kept.find(run_key)
            if found is not None:
                path, run_crc, run_length = found
                with path.open("rb") as fh:
                    while chunk := fh.read(CHUNK):
                        fileobj.write(chunk)
                run = run_crc, run_length
            else:
                run = kept.keep(run_key, fileobj, write)
        crc, length = crc32_combine(crc, run[0], run[1]), length + run[1]
    if gz:
        fileobj.write(FINAL_BLOCK + struct.pack("<II", crc, length & 0xFFFFFFFF))


def pack(
    prefix: Path,
    out_dir: Path,
    stem: str,
    manifest: Manifest,
    *,
    mtime: int,
    threads: int = 0,
    cancel: threading.Event | None = None,
    compression: str = "gz",
    layers: Sequence[Layer] = (),
    kept: KeptRuns | None = None,
) -> PackedArtifact:
    """Write `<stem>.tar.gz` (or `.tar.zst`), its `.sha256` and `<stem>.manifest.toml` into `out_dir`.

    The manifest also goes inside as `<stem>/runenv-manifest.toml`, without provenance (mirror URL, local path).
    `layers` (installed-tree cache entries, what the build wrote) are laid over `prefix`, read where they are.
    Everything is written under a temp name and renamed when complete; the tarball is renamed last, so its
    presence means done.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest.write(prefix / MANIFEST_NAME, inside=True)
    tarball = out_dir / tarball_name(stem, compression)
    sums = checksum_path(tarball)
    manifest_out = out_dir / (stem + MANIFEST_SUFFIX)
    threads = threads or min(4, os.cpu_count() or 1)
    try:
        # Nested, so all three are written before any is renamed: the manifest first, the tarball last.
        with atomic_file(tarball, suffix=PART_SUFFIX) as raw:
            out = HashingWriter(raw)
            write_tar(prefix, stem, out, mtime, threads, cancel, compression, layers, kept)
            sha256, size = out.digest.hexdigest(), out.size
            with atomic_file(sums, suffix=PART_SUFFIX) as sums_out, atomic_file(manifest_out, suffix=PART_SUFFIX) as fh:
                sums_out.write(checksum_line(sha256, tarball).encode("utf-8"))
                fh.write(manifest.to_toml().encode("utf-8"))
    except OSError as exc:
        raise BuildError(f"cannot write {tarball}: {exc.strerror or exc}") from None
    return PackedArtifact(tarball, sha256, size, sums, manifest_out)
