"""A tarball's remembered sha256: reused while the file is unchanged, never for other bytes."""

from __future__ import annotations

import hashlib
import os

import runenv.ops.stamps as stamps
from runenv.ops.stamps import known_sha256


def _counting(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = stamps.sha256_file

    def counted(path):
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(stamps, "sha256_file", counted)
    return calls


def test_unchanged_file_is_hashed_once(tmp_path, monkeypatch):
    tarball = tmp_path / "rt.tar.gz"
    tarball.write_bytes(b"a" * 1000)
    calls = _counting(monkeypatch)
    first = known_sha256(tarball, tmp_path / "cache")
    assert first == hashlib.sha256(b"a" * 1000).hexdigest()
    assert known_sha256(tarball, tmp_path / "cache") == first
    assert len(calls) == 1


def test_rewritten_file_with_restored_mtime_is_hashed_again(tmp_path):
    tarball = tmp_path / "rt.tar.gz"
    tarball.write_bytes(b"a" * 1000)
    known_sha256(tarball, tmp_path / "cache")
    st = tarball.stat()
    tarball.write_bytes(b"b" * 1000)  # same size, and the old mtime put back: only ctime tells
    os.utime(tarball, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert known_sha256(tarball, tmp_path / "cache") == hashlib.sha256(b"b" * 1000).hexdigest()


def test_file_replaced_by_rename_is_hashed_again(tmp_path):
    tarball = tmp_path / "rt.tar.gz"
    tarball.write_bytes(b"a" * 10)
    known_sha256(tarball, tmp_path / "cache")
    other = tmp_path / "new"
    other.write_bytes(b"c" * 10)
    os.replace(other, tarball)
    assert known_sha256(tarball, tmp_path / "cache") == hashlib.sha256(b"c" * 10).hexdigest()


def test_a_garbled_stamp_is_ignored(tmp_path):
    tarball = tmp_path / "rt.tar.gz"
    tarball.write_bytes(b"x")
    known_sha256(tarball, tmp_path / "cache")
    for stamp in (tmp_path / "cache" / "stamps").iterdir():
        stamp.write_text("{not json")
    assert known_sha256(tarball, tmp_path / "cache") == hashlib.sha256(b"x").hexdigest()
