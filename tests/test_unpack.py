"""Safe extraction of runtime tarballs and the shared unpacked copy in the cache."""

from __future__ import annotations

import io
import tarfile

import pytest

from runenv.errors import IntegrityError
from runenv.ops.unpack import extract_tarball, unpack_cached


def _tar(path, members):
    with tarfile.open(path, "w:gz") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name, target):
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, None


@pytest.mark.parametrize(
    "member", [_file("../escape"), _link("top/out", "../../etc/passwd"), _link("top/abs", "/etc/passwd")]
)
def test_members_escaping_the_destination_are_refused(tmp_path, member):
    tarball = _tar(tmp_path / "bad.tar.gz", [member])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(IntegrityError, match="refusing member"):
        extract_tarball(tarball, dest)
    assert not (tmp_path / "escape").exists()


def test_unpack_cached_needs_one_top_dir_and_leaves_nothing_on_failure(tmp_path):
    tarball = _tar(tmp_path / "two.tar.gz", [_file("a/x"), _file("b/y")])
    with pytest.raises(IntegrityError, match="expected one top-level directory, found a, b"):
        unpack_cached(tarball, tmp_path / "cache")
    assert list((tmp_path / "cache" / "runtimes").iterdir()) == []
    good = _tar(tmp_path / "one.tar.gz", [_file("top/bin/tool", b"#!/bin/sh\n")])
    prefix = unpack_cached(good, tmp_path / "cache")
    assert prefix.name == "top" and (prefix / "bin" / "tool").read_bytes() == b"#!/bin/sh\n"
    assert unpack_cached(good, tmp_path / "cache") == prefix
