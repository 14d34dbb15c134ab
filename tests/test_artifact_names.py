"""Names of a built artifact's files, finding its tarball, its checksum file, and what cleanup recognises."""

from __future__ import annotations

from pathlib import Path

import pytest

from runenv.artifact_names import (
    ARTIFACT_RE,
    artifact_stem,
    checksum_line,
    checksum_path,
    find_tarball,
    manifest_path,
    read_checksum,
    stem_of,
    tarball_name,
)
from runenv.workspace import Runtime


def test_every_file_of_an_artifact_is_named_from_its_stem():
    stem = artifact_stem("3.12.10-slim", "linux-x64")
    assert stem == "python-3.12.10-slim-linux-x64"
    assert Runtime("3.12.10-slim", "3.12.10", "slim", Path("python-3.12.10-slim")).artifact_stem("linux-x64") == stem
    assert tarball_name(stem, "gz") == f"{stem}.tar.gz" and tarball_name(stem, "zst") == f"{stem}.tar.zst"
    tarball = Path("dist") / f"{stem}.tar.zst"
    assert checksum_path(tarball) == Path("dist") / f"{stem}.tar.zst.sha256"
    assert manifest_path(tarball) == Path("dist") / f"{stem}.manifest.toml"
    assert stem_of(f"{stem}.tar.gz") == stem


def test_the_configured_compression_is_found_first_and_the_other_still_counts(tmp_path):
    stem = artifact_stem("3.12.10", "linux-x64")
    assert find_tarball(tmp_path, stem, "zst") is None
    (tmp_path / f"{stem}.tar.gz").write_bytes(b"gz")
    assert find_tarball(tmp_path, stem, "zst") == tmp_path / f"{stem}.tar.gz"  # built before the config changed
    (tmp_path / f"{stem}.tar.zst").write_bytes(b"zst")
    assert find_tarball(tmp_path, stem, "zst") == tmp_path / f"{stem}.tar.zst"
    assert find_tarball(tmp_path, stem, "gz") == tmp_path / f"{stem}.tar.gz"


def test_checksum_file_round_trip_and_unreadable_ones(tmp_path):
    tarball = tmp_path / "python-3.12.10-linux-x64.tar.gz"
    digest = "ab" * 32
    checksum_path(tarball).write_text(checksum_line(digest, tarball))
    assert checksum_path(tarball).read_text() == f"{digest}  python-3.12.10-linux-x64.tar.gz\n"
    assert read_checksum(tarball) == digest
    checksum_path(tarball).write_text("not-a-digest  x\n")
    assert read_checksum(tarball) is None
    assert read_checksum(tmp_path / "missing.tar.gz") is None


@pytest.mark.parametrize(
    "name",
    [
        "python-3.12.10-linux-x64.tar.gz",
        "python-3.12.10-linux-x64.tar.zst.sha256",
        "python-3.12.10-scientific-slim-macosx-aarch64.manifest.toml",  # a variant with a hyphen
        ".python-3.12.10-windows-x64.tar.gz.a1b2c3.part",
        ".python-3.12.10-linux-x64.k2j3h4.tmp",
    ],
)
def test_cleanup_recognises_every_artifact_file_finished_or_not(name):
    assert ARTIFACT_RE.match(name)


@pytest.mark.parametrize(
    "name", ["python-3.12.10-linux-amd64.tar.gz", "python-3.12-linux-x64.tar.gz", "notes.txt", "python-3.12.10.tar.gz"]
)
def test_cleanup_leaves_what_is_not_an_artifact(name):
    assert not ARTIFACT_RE.match(name)
