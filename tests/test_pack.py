"""Deterministic packing: normalised entries, stable bytes, temp names, and nothing left on failure."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import zlib
from pathlib import Path

import pytest

from runenv.archive import open_compressed
from runenv.build.manifest import InterpreterInfo, Manifest, PackageEntry, SkippedEntry
from runenv.build.pack import FALLBACK_EPOCH, KeptRuns, pack, source_date_epoch
from runenv.build.packages.layers import Layer
from runenv.compat import tomllib
from runenv.errors import BuildError, UsageError
from tests.conftest import REPO


def make_tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "lib" / "python3.11" / "b").mkdir(parents=True)
    (root / "bin" / "python3.11").write_bytes(os.urandom(3 << 20))  # spans several gzip blocks
    (root / "bin" / "python3.11").chmod(0o700)
    (root / "bin" / "python3").symlink_to("python3.11")
    (root / "lib" / "python3.11" / "os.py").write_text("# os\n")
    (root / "lib" / "python3.11" / "os.py").chmod(0o600)
    (root / "lib" / "python3.11" / "a.py").write_text("# a\n" * 100000)
    (root / "lib" / "python3.11" / "b" / "c.py").write_text("")
    return root


def manifest() -> Manifest:
    return Manifest("3.11.7", "3.11.7", "linux-x64", InterpreterInfo("pbs", "0" * 64, url="file:///x"), "d" * 64)


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_entries_are_normalised_sorted_and_under_one_top_directory(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    art = pack(tree, tmp_path / "dist", "python-3.11.7-linux-x64", manifest(), mtime=1234567890)
    with tarfile.open(art.path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[0] == "python-3.11.7-linux-x64"
    assert all(n == names[0] or n.startswith(names[0] + "/") for n in names)
    assert names == [
        "python-3.11.7-linux-x64",
        *(
            f"python-3.11.7-linux-x64/{n}"
            for n in [
                "bin",
                "bin/python3",
                "bin/python3.11",
                "lib",
                "lib/python3.11",
                "lib/python3.11/a.py",
                "lib/python3.11/b",
                "lib/python3.11/b/c.py",
                "lib/python3.11/os.py",
                "runenv-manifest.toml",
            ]
        ),
    ]
    by_name = {m.name.split("/", 1)[-1]: m for m in members}
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 1234567890)}
    assert by_name["bin"].mode == 0o755
    assert by_name["bin/python3.11"].mode == 0o755
    assert by_name["lib/python3.11/os.py"].mode == 0o644
    assert by_name["bin/python3"].issym() and by_name["bin/python3"].linkname == "python3.11"


def test_gzip_header_has_no_timestamp_or_name(tmp_path: Path) -> None:
    art = pack(make_tree(tmp_path / "tree"), tmp_path / "dist", "rt", manifest(), mtime=0)
    header = art.path.read_bytes()[:10]
    assert header[:3] == b"\x1f\x8b\x08"
    assert header[3] == 0  # no FNAME, no FEXTRA, no FCOMMENT
    assert header[4:8] == b"\0\0\0\0"


def test_same_inputs_give_identical_bytes_whatever_the_tree_metadata_and_threads(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "one")
    second = tmp_path / "two"
    shutil.copytree(first, second, symlinks=True)
    os.utime(second / "lib" / "python3.11" / "os.py", (1, 1))
    (second / "lib" / "python3.11" / "os.py").chmod(0o664)
    a = pack(first, tmp_path / "d1", "rt", manifest(), mtime=FALLBACK_EPOCH, threads=1)
    time.sleep(1.1)
    b = pack(second, tmp_path / "d2", "rt", manifest(), mtime=FALLBACK_EPOCH, threads=4)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.sha256 == b.sha256 == hashlib.sha256(a.path.read_bytes()).hexdigest()


def test_checksum_file_and_manifest_sit_beside_the_tarball(tmp_path: Path) -> None:
    m = manifest()
    m.packages.append(PackageEntry("numpy", "2.2.6", "a" * 64, "wheel", "https://example.invalid/numpy.whl"))
    m.skipped.append(SkippedEntry("cudf-cu12", "CUDA packages not supported on macOS"))
    art = pack(make_tree(tmp_path / "tree"), tmp_path / "dist", "python-x-linux-x64", m, mtime=0)
    assert files_in(tmp_path / "dist") == [
        "python-x-linux-x64.manifest.toml",
        "python-x-linux-x64.tar.gz",
        "python-x-linux-x64.tar.gz.sha256",
    ]
    assert art.sha256_path.read_text() == f"{art.sha256}  python-x-linux-x64.tar.gz\n"
    assert art.size == art.path.stat().st_size
    outside = art.manifest_path.read_bytes()
    with tarfile.open(art.path) as tar:
        inside = tar.extractfile("python-x-linux-x64/runenv-manifest.toml").read()  # type: ignore[union-attr]
    assert tomllib.loads(inside.decode()) == {k: v for k, v in tomllib.loads(outside.decode()).items()} | {
        "interpreter": {"source": "pbs", "sha256": "0" * 64}
    }  # the copy inside leaves out where the interpreter came from
    data = tomllib.loads(outside.decode())
    assert data["format-version"] == 1
    assert data["packages"][0]["name"] == "numpy" and data["skipped"][0]["reason"].startswith("CUDA")
    assert data["interpreter"] == {"source": "pbs", "sha256": "0" * 64, "url": "file:///x"}


def test_failure_while_packing_leaves_nothing(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    os.mkfifo(tree / "lib" / "zz-fifo")
    with pytest.raises(BuildError, match="zz-fifo"):
        pack(tree, tmp_path / "dist", "rt", manifest(), mtime=0)
    assert files_in(tmp_path / "dist") == []


def test_interrupt_while_packing_leaves_nothing(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(KeyboardInterrupt):
        pack(make_tree(tmp_path / "tree"), tmp_path / "dist", "rt", manifest(), mtime=0, cancel=cancel)
    assert files_in(tmp_path / "dist") == []


def test_interrupt_keeps_a_previous_complete_tarball(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    old = pack(tree, tmp_path / "dist", "rt", manifest(), mtime=0)
    before = old.path.read_bytes()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(KeyboardInterrupt):
        pack(tree, tmp_path / "dist", "rt", manifest(), mtime=1, cancel=cancel)
    assert old.path.read_bytes() == before
    assert files_in(tmp_path / "dist") == ["rt.manifest.toml", "rt.tar.gz", "rt.tar.gz.sha256"]


def test_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    assert source_date_epoch("20250517") == 1747440000  # the release date, 00:00 UTC
    assert source_date_epoch(None) == FALLBACK_EPOCH
    assert source_date_epoch("not-a-date") == FALLBACK_EPOCH
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert source_date_epoch("20250517") == 1700000000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        source_date_epoch(None)


def test_zstd_tarball_is_deterministic_and_unpacks(tmp_path: Path) -> None:
    pytest.importorskip("zstandard")
    from runenv.archive import extract

    tree = make_tree(tmp_path / "tree")
    a = pack(tree, tmp_path / "d1", "rt", manifest(), mtime=FALLBACK_EPOCH, threads=1, compression="zst")
    b = pack(tree, tmp_path / "d2", "rt", manifest(), mtime=FALLBACK_EPOCH, threads=2, compression="zst")
    assert a.path.name == "rt.tar.zst" and a.sha256_path.name == "rt.tar.zst.sha256"
    assert a.path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    assert a.path.read_bytes() == b.path.read_bytes()
    extract(a.path, tmp_path / "out", label=a.path.name, strip="rt")
    assert (tmp_path / "out" / "lib" / "python3.11" / "a.py").read_text() == "# a\n" * 100000


def _layer(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize("compression", ["gz", "zst"])
def test_a_layered_tarball_reads_whole_everywhere_and_a_kept_run_packs_the_same_bytes(
    tmp_path: Path, compression: str
) -> None:
    """Runs packed apart (one per layer, kept ones copied) make one archive every reader reads whole: one gzip
    member (streaming readers stop after the first), or zstd frames; GNU tar and tarfile see every entry."""
    if compression == "zst":
        pytest.importorskip("zstandard")
    stem = "python-3.11.7-linux-x64"
    site = "lib/python3.11/site-packages"
    tree = _layer(tmp_path / "tree", {f"{site}/pkg/__init__.py": "X = 1\n" * 50000, f"{site}/pkg/data.txt": "d"})
    overlay = _layer(tmp_path / "overlay", {f"{site}/sitecustomize.py": "# shim\n"})
    kept = KeptRuns(tmp_path / "cache")
    base = make_tree(tmp_path / "base")

    def packed(out: str) -> Path:
        layers = [Layer(tree, key="tree-1"), Layer(overlay)]
        return pack(
            base, tmp_path / out / "dist", stem, manifest(), mtime=1234567890,
            compression=compression, layers=layers, kept=kept,
        ).path  # fmt: skip

    first = packed("one")
    assert len([p for p in (tmp_path / "cache" / "packed").iterdir() if p.suffix == ".json"]) == 1
    second = packed("two")  # the tree's run copied from the cache
    assert first.read_bytes() == second.read_bytes()
    with open_compressed(first) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:  # runenv's own reader
        names = tar.getnames()
    assert f"{stem}/{site}/pkg/__init__.py" in names and f"{stem}/{site}/sitecustomize.py" in names
    assert f"{stem}/bin/python3" in names
    if compression == "gz":
        with tarfile.open(first, "r|gz") as stream:
            assert [m.name for m in stream] == names
        whole = zlib.decompressobj(31)
        data = whole.decompress(first.read_bytes())
        assert whole.eof and whole.unused_data == b""  # one member, its CRC and length checked
        assert data.endswith(tarfile.NUL * 1024) and len(data) % tarfile.BLOCKSIZE == 0
    flag = {"gz": "-z", "zst": "--zstd"}[compression]
    if shutil.which("tar") and (compression == "gz" or shutil.which("zstd")):
        listed = subprocess.run(["tar", flag, "-tf", str(first)], capture_output=True, text=True, check=True).stdout
        assert sorted(n.rstrip("/") for n in listed.splitlines()) == sorted(names)


def test_a_kept_run_is_not_reused_where_another_layer_hides_part_of_its_tree(tmp_path: Path) -> None:
    """The same tree under a prefix with `a/` and under an overlay whose file `a` hides the tree's `a/x`: two
    different runs, and each tarball is the one packed without the cache."""
    tree = _layer(tmp_path / "tree", {"a/x": "x", "b": "b"})
    with_dir = _layer(tmp_path / "with-dir", {"a/y": "y"})
    hiding = _layer(tmp_path / "hiding", {"a": "a file"})
    kept = KeptRuns(tmp_path / "cache")

    def packed(base: Path, layers: list[Layer], out: str, cache: KeptRuns | None) -> bytes:
        return pack(base, tmp_path / out, "rt", manifest(), mtime=1, layers=layers, kept=cache).path.read_bytes()

    other = _layer(tmp_path / "other", {"c": "c"})
    packed(with_dir, [Layer(tree, key="t"), Layer(other)], "one", kept)
    assert len(list((tmp_path / "cache" / "packed").glob("*.json"))) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    cached = packed(empty, [Layer(tree, key="t"), Layer(hiding)], "two", kept)
    assert cached == packed(empty, [Layer(tree, key="t"), Layer(hiding)], "three", None)


def test_a_run_being_kept_leaves_nothing_when_the_build_fails_or_is_killed(tmp_path: Path) -> None:
    """The copy a run keeps is written in an owned directory: a failed pack removes it, a killed one's is swept by
    the next run kept, and only whole runs with their records stay in `<cache>/packed/`."""
    packed = tmp_path / "cache" / "packed"
    kill = (
        "import io, os, sys\n"
        "from pathlib import Path\n"
        "from runenv.build.pack import KeptRuns\n"
        "def write(sink):\n"
        "    sink.write(b'x' * 4096)\n"
        "    os._exit(9)  # killed mid-run\n"
        "KeptRuns(Path(sys.argv[1])).keep('killed', io.BytesIO(), write)\n"
    )
    subprocess.run([sys.executable, "-c", kill, str(tmp_path / "cache")], cwd=REPO, check=False)
    assert [p.name for p in packed.iterdir() if p.name.startswith(".part-")]  # what the killed run left

    def failing(sink):
        sink.write(b"y" * 4096)
        raise BuildError("the tarball's side failed")

    kept = KeptRuns(tmp_path / "cache")
    with pytest.raises(BuildError):
        kept.keep("failed", io.BytesIO(), failing)

    def whole(sink):
        sink.write(b"z" * 4096)
        return 0, 4096

    assert kept.keep("whole", io.BytesIO(), whole) == (0, 4096)
    assert sorted(p.name for p in packed.iterdir()) == ["whole", "whole.json"]
    assert kept.find("whole") is not None and kept.find("failed") is None
