"""Safe extraction: hostile members are refused by name and leave nothing behind."""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from runenv.archive import ReadAhead, extract
from runenv.errors import IntegrityError
from tests.helpers.bombs import tar_gz_bomb
from tests.helpers.pbs import tar_gz_of


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = mode
    return info


def assert_refused(archive: Path, match: str, data: bytes | None = None) -> None:
    """Extracting `archive` (first written with `data`, if given) raises IntegrityError matching `match`
    and leaves no destination directory behind."""
    if data is not None:
        archive.write_bytes(data)
    dest = archive.parent / "out"
    with pytest.raises(IntegrityError, match=match):
        extract(archive, dest, label=archive.name)
    assert not dest.exists()


GOOD = [
    (entry("python", tarfile.DIRTYPE, mode=0o755), None),
    (entry("python/bin", tarfile.DIRTYPE, mode=0o755), None),
    (entry("python/bin/python3.11", mode=0o755), b"#!/bin/sh\necho hi\n"),
    (entry("python/bin/python3", tarfile.SYMTYPE, "python3.11"), None),
    (entry("python/lib/python3.11/os.py"), b"# os\n"),
    (entry("python/lib/python3.11/os-copy.py", tarfile.LNKTYPE, "python/lib/python3.11/os.py"), None),
    (entry("python/lib/python3.11/config", tarfile.SYMTYPE, "../../bin"), None),
]


def test_extract_strips_top_directory_and_keeps_links_and_modes(tmp_path: Path) -> None:
    archive = tar_gz_of(tmp_path / "good.tar.gz", GOOD)
    dest = tmp_path / "out"
    extract(archive, dest, label="good.tar.gz")
    assert (dest / "bin" / "python3").is_symlink()
    assert (dest / "bin" / "python3").read_text() == "#!/bin/sh\necho hi\n"
    assert (dest / "bin" / "python3.11").stat().st_mode & 0o777 == 0o755
    assert (dest / "lib/python3.11/os.py").stat().st_mode & 0o777 == 0o644
    assert (dest / "lib/python3.11/os-copy.py").read_text() == "# os\n"
    assert (dest / "lib/python3.11/config/python3.11").is_file()


HOSTILE = {
    "absolute path": [(entry("/etc/evil"), b"x")],
    "dot-dot": [(entry("python/../../evil"), b"x")],
    "outside top directory": [(entry("other/evil"), b"x")],
    "absolute symlink": [(entry("python/lib", tarfile.SYMTYPE, "/etc"), None)],
    "escaping symlink": [(entry("python/bin/up", tarfile.SYMTYPE, "../../.."), None)],
    "symlink chain": [
        (entry("python/a", tarfile.DIRTYPE, mode=0o755), None),
        (entry("python/a/b", tarfile.SYMTYPE, ".."), None),
        (entry("python/a/b/c", tarfile.SYMTYPE, ".."), None),
    ],
    "write through symlink": [
        (entry("python/a", tarfile.DIRTYPE, mode=0o755), None),
        (entry("python/a/b", tarfile.SYMTYPE, ".."), None),
        (entry("python/a/b/b2", tarfile.SYMTYPE, "."), None),
        (entry("python/x", tarfile.SYMTYPE, "a/b/b2"), None),
        (entry("python/x/../../evil"), b"x"),
    ],
    "hardlink outside": [(entry("python/passwd", tarfile.LNKTYPE, "/etc/passwd"), None)],
    "hardlink through a link chain": [  # d/y is d/x/.., and d/x is the tree itself: d/y/.. is its parent
        (entry("python/d", tarfile.DIRTYPE, mode=0o755), None),
        (entry("python/d/x", tarfile.SYMTYPE, ".."), None),
        (entry("python/d/y", tarfile.SYMTYPE, "x/.."), None),
        (entry("python/stolen", tarfile.LNKTYPE, "python/d/y/evil.tar.gz"), None),
    ],
    "symlink redirected by a later link": [  # d/y looks inside until d/z makes z/.. the tree's parent
        (entry("python/d", tarfile.DIRTYPE, mode=0o755), None),
        (entry("python/d/y", tarfile.SYMTYPE, "z/.."), None),
        (entry("python/d/z", tarfile.SYMTYPE, ".."), None),
    ],
    "device file": [(entry("python/dev", tarfile.CHRTYPE), None)],
    "fifo": [(entry("python/fifo", tarfile.FIFOTYPE), None)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_refused_and_nothing_is_left(tmp_path: Path, case: str) -> None:
    archive = tar_gz_of(
        tmp_path / "evil.tar.gz", [(entry("python", tarfile.DIRTYPE, mode=0o755), None), *HOSTILE[case]]
    )
    dest = tmp_path / "out"
    with pytest.raises(IntegrityError) as err:
        extract(archive, dest, label="evil.tar.gz")
    assert "evil.tar.gz" in err.value.message
    assert "refusing member" in err.value.message
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz"]


def test_corrupt_archive_is_an_integrity_error(tmp_path: Path) -> None:
    archive = tmp_path / "broken.tar.gz"
    good = tar_gz_of(tmp_path / "good.tar.gz", GOOD).read_bytes()
    assert_refused(archive, "broken.tar.gz", good[: len(good) // 2])


EIGHT_LETTERS = bytes(b"abcdefgh"[i % 8] for i in range(256))


def big(name: str, size: int, seed: int) -> tuple[tarfile.TarInfo, bytes]:
    """A member larger than the read-ahead blocks, compressible but not trivially so."""
    return entry(name), random.Random(seed).randbytes(size).translate(EIGHT_LETTERS)


def many_blocks(tmp_path: Path) -> Path:
    """A tar.gz whose members span many read-ahead blocks, and a regular file after the big ones."""
    members = [(entry("python", tarfile.DIRTYPE, mode=0o755), None)]
    members += [big(f"python/lib/part{i}.bin", 700_001 + i, seed=i) for i in range(6)]
    members += [(entry("python/lib/last.py"), b"# the last member\n")]
    return tar_gz_of(tmp_path / "big.tar.gz", members)


def test_members_spanning_read_ahead_blocks_are_exact(tmp_path: Path) -> None:
    archive = many_blocks(tmp_path)
    extract(archive, tmp_path / "out", label="big.tar.gz")
    for i in range(6):
        assert (tmp_path / "out" / f"lib/part{i}.bin").read_bytes() == big("x", 700_001 + i, seed=i)[1]
    assert (tmp_path / "out" / "lib/last.py").read_bytes() == b"# the last member\n"


@pytest.mark.parametrize("where", [0.3, 0.5, 0.9])
def test_corrupt_gzip_data_midstream_is_an_integrity_error(tmp_path: Path, where: float) -> None:
    data = bytearray(many_blocks(tmp_path).read_bytes())
    start = int(len(data) * where)
    data[start : start + 64] = bytes(b ^ 0x5A for b in data[start : start + 64])
    assert_refused(tmp_path / "damaged.tar.gz", "damaged.tar.gz", data)


def test_invalid_deflate_block_is_an_integrity_error(tmp_path: Path) -> None:
    """The decompressor's own error type (not an OSError) still becomes IntegrityError."""
    tar = plain_tar(tmp_path / "rt.tar", GOOD)
    data = bytearray(gzip.compress(tar.read_bytes(), mtime=0))
    data[10] = 0xFF  # the first deflate block header (after gzip's 10 bytes): a reserved block type
    assert_refused(tmp_path / "invalid.tar.gz", "invalid.tar.gz: cannot unpack", data)


def plain_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize("damage", ["truncated in a member", "truncated in a header", "garbled header"])
def test_damaged_plain_tar_is_an_integrity_error(tmp_path: Path, damage: str) -> None:
    """Without a compression layer to notice, tarfile alone would stop quietly at a damaged header."""
    members = [(entry("python", tarfile.DIRTYPE, mode=0o755), None)]
    members += [(entry(f"python/f{i}.py"), b"x" * 1000) for i in range(4)]
    data = bytearray(plain_tar(tmp_path / "good.tar", members).read_bytes())
    third_header = 512 + 2 * (512 + 1024)
    if damage == "truncated in a member":
        data = data[: third_header + 512 + 100]
    elif damage == "truncated in a header":
        data = data[: third_header + 100]
    else:
        data[third_header : third_header + 512] = b"garbage!" * 64
    assert_refused(tmp_path / "damaged.tar", "damaged.tar", data)


def test_zstd_archive_unpacks_and_damage_is_an_integrity_error(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    tar = plain_tar(tmp_path / "rt.tar", GOOD + [big("python/lib/big.bin", 2_500_000, seed=7)])
    packed = zstandard.ZstdCompressor(write_checksum=True).compress(tar.read_bytes())
    archive = tmp_path / "rt.tar.zst"
    archive.write_bytes(packed)
    extract(archive, tmp_path / "out", label="rt.tar.zst")
    assert (tmp_path / "out" / "lib/big.bin").read_bytes() == big("x", 2_500_000, seed=7)[1]
    archive.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(IntegrityError, match="rt.tar.zst"):
        extract(archive, tmp_path / "out2", label="rt.tar.zst")
    assert not (tmp_path / "out2").exists()


def test_member_seen_twice_replaces_the_first_without_writing_through_links(tmp_path: Path) -> None:
    archive = tar_gz_of(
        tmp_path / "twice.tar.gz",
        [
            (entry("python", tarfile.DIRTYPE, mode=0o755), None),
            (entry("python/target.txt"), b"untouched\n"),
            (entry("python/a.txt"), b"first\n"),
            (entry("python/a.txt", mode=0o755), b"second\n"),
            (entry("python/link", tarfile.SYMTYPE, "target.txt"), None),
            (entry("python/link"), b"a file now\n"),
            (entry("python/file-then-link"), b"old\n"),
            (entry("python/file-then-link", tarfile.SYMTYPE, "target.txt"), None),
            (entry("python/hard"), b"old\n"),
            (entry("python/hard", tarfile.LNKTYPE, "python/target.txt"), None),
            (entry("python/d", tarfile.DIRTYPE, mode=0o755), None),
            (entry("python/d", tarfile.DIRTYPE, mode=0o755), None),
        ],
    )
    dest = tmp_path / "out"
    extract(archive, dest, label="twice.tar.gz")
    assert (dest / "a.txt").read_text() == "second\n"
    assert (dest / "a.txt").stat().st_mode & 0o777 == 0o755
    assert not (dest / "link").is_symlink() and (dest / "link").read_text() == "a file now\n"
    assert (dest / "file-then-link").is_symlink() and (dest / "file-then-link").read_text() == "untouched\n"
    assert (dest / "hard").stat().st_ino == (dest / "target.txt").stat().st_ino
    assert (dest / "target.txt").read_text() == "untouched\n"
    assert (dest / "d").is_dir()


@pytest.mark.parametrize("case", ["file replaces directory", "symlink replaces directory", "hard link to missing"])
def test_replacing_a_directory_or_linking_to_nothing_is_refused(tmp_path: Path, case: str) -> None:
    last = {
        "file replaces directory": (entry("python/d"), b"x"),
        "symlink replaces directory": (entry("python/d", tarfile.SYMTYPE, "."), None),
        "hard link to missing": (entry("python/h", tarfile.LNKTYPE, "python/nowhere"), None),
    }[case]
    archive = tar_gz_of(
        tmp_path / "bad.tar.gz",
        [
            (entry("python", tarfile.DIRTYPE, mode=0o755), None),
            (entry("python/d", tarfile.DIRTYPE, mode=0o755), None),
            (entry("python/d/keep.txt"), b"x"),
            last,
        ],
    )
    assert_refused(archive, "bad.tar.gz: .*'python/(d|h)'")


def test_modes_are_exact_whatever_the_umask(tmp_path: Path) -> None:
    archive = tar_gz_of(tmp_path / "good.tar.gz", GOOD)
    old = os.umask(0o077)
    try:
        extract(archive, tmp_path / "out", label="good.tar.gz")
    finally:
        os.umask(old)
    assert (tmp_path / "out/bin/python3.11").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out/lib/python3.11/os.py").stat().st_mode & 0o777 == 0o644


@pytest.mark.skipif(not shutil.which("tar"), reason="needs GNU tar to write a sparse member")
def test_sparse_member_is_filled_in(tmp_path: Path) -> None:
    tree = tmp_path / "python"
    tree.mkdir()
    with (tree / "holes.bin").open("wb") as fh:
        fh.write(b"head")
        fh.seek(3_000_000)
        fh.write(b"tail")
    archive = tmp_path / "sparse.tar.gz"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-czf", archive, "-C", tmp_path, "python"], check=True)
    with tarfile.open(archive) as tar:
        assert tar.getmember("python/holes.bin").issparse()
    extract(archive, tmp_path / "out", label="sparse.tar.gz")
    assert (tmp_path / "out/holes.bin").read_bytes() == (tree / "holes.bin").read_bytes()


class Trickle(io.RawIOBase):
    """A source that hands out at most `step` bytes per read, then fails if `fail` is set."""

    def __init__(self, data: bytes, step: int, fail: str | None = None) -> None:
        self.data, self.step, self.fail, self.at = data, step, fail, 0

    def read(self, size: int = -1) -> bytes:
        if self.at == len(self.data) and self.fail:
            raise ValueError(self.fail)
        chunk = self.data[self.at : self.at + min(size, self.step)]
        self.at += len(chunk)
        return chunk


def test_read_ahead_reads_seeks_and_writes_across_blocks(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(100_000)
    with ReadAhead(Trickle(data, step=333)) as stream:
        assert stream.read(10) == data[:10]
        assert stream.read(1000) == data[10:1010]
        assert stream.seek(5000) == 5000 and stream.tell() == 5000
        with (tmp_path / "out").open("wb") as out:
            stream.write_to(out.fileno(), 20_000)
        assert stream.read(512) == data[25_000:25_512]
        with pytest.raises(OSError, match="forward only"):
            stream.seek(0)
        assert stream.read(200_000) == data[25_512:]
        assert stream.read(1) == b"" and stream.tell() == len(data)
    assert (tmp_path / "out").read_bytes() == data[5000:25_000]


def test_read_ahead_raises_the_source_error_where_the_data_ends() -> None:
    with ReadAhead(Trickle(b"x" * 5000, step=700, fail="damaged at 5000")) as stream:
        assert stream.read(5000) == b"x" * 5000
        for _ in range(2):  # and again on every later read
            with pytest.raises(OSError, match="damaged at 5000"):
                stream.read(1)


def test_read_ahead_stops_its_thread_when_closed_early() -> None:
    endless = Trickle(b"", step=1 << 20)
    endless.read = lambda size=-1: b"\0" * size  # type: ignore[method-assign]
    before = set(threading.enumerate())
    stream = ReadAhead(endless)
    started = set(threading.enumerate()) - before
    assert stream.read(3) == b"\0\0\0"
    stream.close()  # the reader is blocked on a full queue: close must still return
    assert started and not any(thread.is_alive() for thread in started)


def test_a_decompression_bomb_is_refused_at_its_header_naming_the_member(tmp_path: Path) -> None:
    """2 MB of gzip that really unpacks to a 2 GiB member: refused before any of its bytes are written."""
    bomb = tar_gz_bomb(tmp_path / "bomb.tar.gz")
    assert bomb.stat().st_size < 3_000_000
    assert_refused(bomb, r"bomb\.tar\.gz: refusing member 'python/lib/huge\.bin': it declares 2147\.5 MB")


def test_an_archive_larger_than_the_free_space_is_refused_before_writing(tmp_path: Path, small_tmpfs: Path) -> None:
    """Honest, incompressible data that does not fit: one clear line up front instead of ENOSPC half-way."""
    data = random.Random(7).randbytes(12 << 20)
    archive = tar_gz_of(
        tmp_path / "big.tar.gz", [(entry("python", tarfile.DIRTYPE), None), (entry("python/big"), data)]
    )
    dest = small_tmpfs / "out"
    with pytest.raises(IntegrityError, match=rf"member 'python/big' would need 12\.6 MB in all, but {dest} has only"):
        extract(archive, dest, label=archive.name)
    assert not dest.exists() and os.statvfs(small_tmpfs).f_bfree == os.statvfs(small_tmpfs).f_blocks
