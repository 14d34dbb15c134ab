"""Deterministic, streamed runtime tarballs with their `.sha256` and manifest, written under temp names."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tarfile
import threading
from collections.abc import Callable, Iterator, Sequence
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
from runenv.cache import CHUNK, HashingWriter, sha256_file
from runenv.errors import BuildError, Cancelled, UsageError
from runenv.files import atomic_file, move_into_place, write_text_atomic
from runenv.layers import Entry, Layer, runs
from runenv.manifest import MANIFEST_NAME, Manifest
from runenv.owner import owned_dir

FALLBACK_EPOCH = 315532800  # 1980-01-01T00:00:00Z: the earliest time every archive format can store
GZIP_LEVEL = 2  # ISA-L levels run 0..3; 2 is its speed/size trade-off
GZIP_BLOCK = 1 << 20  # fixed block size: the output does not depend on the number of threads
# tarfile's stream mode appends every write to a bytes buffer of this size, copying it each time:
# 64 KiB packs the bench runtime in ~2.2 s instead of ~3.0 s with 1 MiB, with the same bytes. The gzip
# output depends on how writes line up with ISA-L's blocks, so the blocks must be whole buffers.
TAR_BUFFER = 1 << 16
assert GZIP_BLOCK % TAR_BUFFER == 0
ZSTD_LEVEL = 3
PACK_FORMAT = 1  # bump when the same layers would pack to other bytes


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


def compressor(fileobj: Sink, compression: str, threads: int) -> contextlib.AbstractContextManager[IO[bytes]]:
    """A deterministic compressing writer: threaded ISA-L gzip, or multi-threaded zstd; each one written to
    `fileobj` is a whole gzip member or zstd frame, and members or frames one after another read as one."""
    require_compression(compression)
    if compression == "zst":
        import zstandard

        # With at least one worker, zstd's output does not depend on the number of workers.
        cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=max(1, threads), write_content_size=False)
        return cctx.stream_writer(fileobj, closefd=False)  # type: ignore[arg-type]
    from isal import igzip_threaded

    gzip_open: Callable[..., IO[bytes]] = igzip_threaded.open  # isal's open has no annotations
    return gzip_open(fileobj, "wb", compresslevel=GZIP_LEVEL, threads=threads, block_size=GZIP_BLOCK)


class _Pieces:
    """Passes bytes on in whole TAR_BUFFER pieces (the last one shorter): the compressed bytes depend on how
    writes line up with the compressor's blocks, so they must not depend on how the tar is read."""

    def __init__(self, out: IO[bytes]) -> None:
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
            self.out.write(view[at : at + TAR_BUFFER])
        self.pending += view[whole:]

    def close(self) -> None:
        if self.pending:
            self.out.write(bytes(self.pending))
            self.pending = bytearray()


class _Tee:
    """Compressed bytes going to the tarball and to a kept run at once, hashed for the run's record."""

    def __init__(self, first: Sink, second: IO[bytes]) -> None:
        self.first, self.second = first, second
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.first.write(data)
        self.second.write(data)
        self.digest.update(data)
        self.size += len(data)

    def flush(self) -> None:
        self.first.flush()
        self.second.flush()


class KeptRuns:
    """The packed run of each installed-tree layer, kept at `<cache>/packed/<key>` (the compressed bytes, with
    `<key>.json`: their sha256 and size). The key digests the layer's cache key, the artifact's top directory
    (its .pyc name their sources under it), the entry time, the compression and PACK_FORMAT, and the paths of
    the layer that other runs hold; a run is used only when its bytes hash to its record."""

    def __init__(self, cache_root: Path) -> None:
        self.directory = cache_root / "packed"

    def key(self, layer: str, top: str, mtime: int, compression: str, elsewhere: list[str]) -> str:
        facts = json.dumps([PACK_FORMAT, layer, top, mtime, compression, GZIP_LEVEL, ZSTD_LEVEL, elsewhere])
        return hashlib.sha256(facts.encode()).hexdigest()

    def find(self, key: str) -> Path | None:
        path, record = self.directory / key, self.directory / f"{key}.json"
        try:
            want = json.loads(record.read_text(encoding="utf-8"))
            if path.stat().st_size == want["size"] and sha256_file(path) == want["sha256"]:
                return path
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    @contextlib.contextmanager
    def keeping(self, key: str, out: Sink) -> Iterator[Sink]:
        """A sink writing to `out` and, once the block ends without error, kept under `key`."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.directory / key, suffix=PART_SUFFIX) as kept:
            tee = _Tee(out, kept)
            yield tee
        write_text_atomic(
            self.directory / f"{key}.json", json.dumps({"sha256": tee.digest.hexdigest(), "size": tee.size})
        )


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
) -> None:
    """`entries` as tar headers and data (no end-of-archive blocks), compressed as one member into `sink`."""
    with compressor(sink, compression, threads) as packed:
        pieces = _Pieces(packed)
        if first is not None:
            pieces.write(first.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
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
            pieces.write(info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
            if not info.isreg():
                continue
            if data is not None:
                pieces.write(data)
                written = len(data)
            else:
                written = 0
                with path.open("rb") as fh:
                    while chunk := fh.read(CHUNK):
                        pieces.write(chunk)
                        written += len(chunk)
                if written != info.size:
                    raise OSError(f"{path} changed while it was packed")
            if written % tarfile.BLOCKSIZE:
                pieces.write(tarfile.NUL * (tarfile.BLOCKSIZE - written % tarfile.BLOCKSIZE))
        pieces.close()


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

    The tar is one run of entries per layer (runenv.layers.runs), each compressed as its own gzip member or
    zstd frame, then the end-of-archive blocks as one more: the run of an installed-tree layer is the same
    bytes in every artifact with the same top directory, so with `kept` it is packed once and copied after.
    """
    stack = [Layer(prefix), *layers]
    for index, (entries, elsewhere) in enumerate(runs(stack)):
        first = tar_entry(top, os.stat(prefix), mtime) if index == 0 else None
        if not entries and first is None:
            continue
        key = stack[index].key
        if kept is None or key is None:
            _write_run(fileobj, entries, stack, top, mtime, threads, compression, cancel, first)
            continue
        run_key = kept.key(key, top, mtime, compression, elsewhere)
        found = kept.find(run_key)
        if found is not None:
            with found.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    fileobj.write(chunk)
            continue
        with kept.keeping(run_key, fileobj) as sink:
            _write_run(sink, entries, stack, top, mtime, threads, compression, cancel, first)
    with compressor(fileobj, compression, threads) as packed:
        packed.write(tarfile.NUL * (2 * tarfile.BLOCKSIZE))


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
