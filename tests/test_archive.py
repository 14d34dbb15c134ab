"""Safe extraction: hostile members are refused by name and leave nothing behind."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from runenv.archive import extract
from runenv.errors import IntegrityError
from tests.helpers.pbs import tar_gz_of


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = mode
    return info


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
    "device file": [(entry("python/dev", tarfile.CHRTYPE), None)],
    "fifo": [(entry("python/fifo", tarfile.FIFOTYPE), None)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_refused_and_nothing_is_left(tmp_path: Path, case: str) -> None:
    archive = tar_gz_of(tmp_path / "evil.tar.gz", [(entry("python", tarfile.DIRTYPE, mode=0o755), None), *HOSTILE[case]])
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
    archive.write_bytes(good[: len(good) // 2])
    with pytest.raises(IntegrityError, match="broken.tar.gz"):
        extract(archive, tmp_path / "out", label="broken.tar.gz")
    assert not (tmp_path / "out").exists()
