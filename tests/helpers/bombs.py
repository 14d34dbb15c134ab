"""Decompression bombs, real and small on disk: archives whose members really unpack to gigabytes of zeros.

Deflate after a full flush starts afresh, so the compressed form of 64 MiB of zeros is one block of bytes
that can be repeated: a 2 GiB member costs one compression of 64 MiB (~0.5 s) and ~2 MB of file.
"""

from __future__ import annotations

import functools
import struct
import tarfile
import zlib
from pathlib import Path

ZEROS = 64 << 20  # the repeated unit


@functools.cache
def _zeros_block() -> tuple[bytes, bytes]:
    """(raw deflate of ZEROS zero bytes ending in a full flush, the final empty block that ends the stream)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(ZEROS)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block, compressor.flush()


def _gzip_member(raw_deflate: bytes, crc: int, size: int) -> bytes:
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw_deflate + struct.pack("<2L", crc, size & 0xFFFFFFFF)


def _gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return _gzip_member(compressor.compress(data) + compressor.flush(), zlib.crc32(data), len(data))


def tar_gz_bomb(path: Path, member: str = "python/lib/huge.bin", size: int = 2 << 30, top: str = "python") -> Path:
    """A valid multi-member .tar.gz holding `top/` and one regular file `member` of `size` zero bytes."""
    assert size % ZEROS == 0
    directory = tarfile.TarInfo(top)
    directory.type, directory.mode = tarfile.DIRTYPE, 0o755
    huge = tarfile.TarInfo(member)
    huge.size, huge.mode = size, 0o644
    headers = directory.tobuf(tarfile.PAX_FORMAT) + huge.tobuf(tarfile.PAX_FORMAT)
    block, end = _zeros_block()
    zeros_member = _gzip_member(block + end, zlib.crc32(bytes(ZEROS)), ZEROS)
    with path.open("wb") as out:
        out.write(_gzip(headers))
        for _ in range(size // ZEROS):
            out.write(zeros_member)
        out.write(_gzip(bytes(2 * tarfile.BLOCKSIZE)))  # the end-of-archive blocks
    return path


def _zeros_crc(size: int) -> int:
    crc, chunk = 0, bytes(1 << 20)
    for _ in range(size // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return crc


def zip_bomb(
    path: Path, small: dict[str, bytes], huge: str, size: int = 512 << 20, declared: int | None = None
) -> Path:
    """A zip (a wheel, an sdist) with the `small` members stored and `huge` deflated: `size` zero bytes, whose
    size in the central directory is `declared` (default: the truth)."""
    assert size % ZEROS == 0
    block, end = _zeros_block()
    members = [(name, 0, data, zlib.crc32(data), len(data)) for name, data in small.items()]
    members.append((huge, 8, block * (size // ZEROS) + end, _zeros_crc(size), size if declared is None else declared))
    central = b""
    with path.open("wb") as out:
        for name, method, data, crc, usize in members:
            offset = out.tell()
            encoded = name.encode()
            head = (20, 0, method, 0, 0x21, crc, len(data), usize, len(encoded), 0)
            out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", *head) + encoded + data)
            central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *head, 0, 0, 0, 0o644 << 16, offset) + encoded
        start = out.tell()
        out.write(central)
        out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), start, 0))
    return path
