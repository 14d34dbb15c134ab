"""Atomic writes, directories published whole, and moves into place, also from one file system to another."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runenv.files import atomic_file, move_into_place, publish_dir, write_text_atomic


def test_move_into_place_across_file_systems_keeps_bytes_and_mode(tmpdir_in_ram: Path, tmp_path: Path) -> None:
    source = tmpdir_in_ram / "x.whl"
    source.write_bytes(b"wheel" * 100_000)
    source.chmod(0o755)
    dest = tmp_path / "out" / "x.whl"
    dest.parent.mkdir()
    assert os.stat(source).st_dev != os.stat(dest.parent).st_dev
    assert move_into_place(source, dest) == dest
    assert dest.read_bytes() == b"wheel" * 100_000 and (dest.stat().st_mode & 0o777) == 0o755
    assert not source.exists() and sorted(p.name for p in dest.parent.iterdir()) == ["x.whl"]


def test_move_into_place_replaces_an_existing_file(tmp_path: Path) -> None:
    source, dest = tmp_path / "new", tmp_path / "old"
    source.write_text("new")
    dest.write_text("old")
    move_into_place(source, dest)
    assert dest.read_text() == "new" and not source.exists()


def test_failed_atomic_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = write_text_atomic(tmp_path / "f.toml", "old\n")
    with pytest.raises(RuntimeError), atomic_file(target) as fh:
        fh.write(b"half")
        raise RuntimeError("disk gone")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["f.toml"]


def test_publish_dir_renames_a_built_directory_in_and_makes_its_parent(tmp_path: Path) -> None:
    staged, final = tmp_path / "staged", tmp_path / "cache" / "entry"
    staged.mkdir()
    (staged / "f").write_text("ours")
    assert publish_dir(staged, final) is True
    assert (final / "f").read_text() == "ours" and not staged.exists()


def test_publish_dir_drops_ours_when_another_process_got_there_first(tmp_path: Path) -> None:
    staged, final = tmp_path / "staged", tmp_path / "entry"
    for directory, text in ((staged, "ours"), (final, "theirs")):
        directory.mkdir()
        (directory / "f").write_text(text)
    assert publish_dir(staged, final) is False
    assert (final / "f").read_text() == "theirs" and not staged.exists()


def test_publish_dir_raises_when_what_is_there_is_not_a_published_entry(tmp_path: Path) -> None:
    staged, final = tmp_path / "staged", tmp_path / "entry"
    for directory in (staged, final):
        directory.mkdir()
        (directory / "f").write_text("x")
    with pytest.raises(OSError):
        publish_dir(staged, final, lambda entry: (entry / "entry.json").is_file())
    assert staged.is_dir()
