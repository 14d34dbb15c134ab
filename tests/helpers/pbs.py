"""A python-build-standalone mirror for tests: archives made from the running interpreter, served on loopback.

Fixtures (registered in tests/conftest.py):
- `pbs_archives` (session): builds once per session, in a temp dir, a real relocatable Linux
  `install_only` archive of the interpreter running the tests, plus synthetic Windows and macOS
  layouts with dummy bytes (for cross-build naming and layout).
- `pbs_mirror` (per test): a `PbsMirror` serving those archives and a `SHA256SUMS` at
  `<url>/<RELEASE>/`; tests may add archives or tamper with sums without affecting other tests.
- `build_workspace` (per test): a workspace with runtime `<running X.Y.Z>` whose `python.release`
  is RELEASE, with `RUNENV_PBS_MIRROR` pointing at `pbs_mirror`.
- `pbs_catalogue` (per test): a PBS catalogue describing `pbs_mirror`'s archives, in use through
  `RUNENV_PBS_CATALOGUE` (the built-in catalogue knows only real PBS archives, not these).
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runenv.build.interpreter.pbs import SUMS_NAME, archive_name
from runenv.build.interpreter.relocate import patchelf
from runenv.cache import sha256_file
from runenv.platforms import get_platform
from tests.helpers import HOST
from tests.helpers.http import StaticServer
from tests.helpers.native import macho, pe_file

RELEASE = "20990101"
FLAVOR = "install_only_stripped"
VERSION = platform.python_version()  # the running interpreter's X.Y.Z: the fixture archive holds it
MINOR = f"{sys.version_info[0]}.{sys.version_info[1]}"
ARCHIVE_NAME_RE = re.compile(r"^cpython-(\d+\.\d+\.\d+)\+(\d{8})-(.+)-(install_only(?:_stripped)?)\.tar\.gz$")
STDLIB_SKIP = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "__pycache__", "ensurepip", "lib2to3"}


def _copy_stdlib(src: Path, dest: Path, keep_pycache: bool = False) -> None:
    dropped = STDLIB_SKIP - {"__pycache__"} if keep_pycache else STDLIB_SKIP

    def ignore(directory: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n in dropped or n.endswith(".a")}
        if Path(directory) == src:
            skip |= {n for n in names if n == "site-packages"}
        return skip

    shutil.copytree(src, dest, symlinks=True, ignore=ignore)
    (dest / "site-packages").mkdir()


def stage_host_prefix(dest: Path, base: Path | None = None, minor: str = MINOR, keep_pycache: bool = False) -> Path:
    """A relocatable copy of a CPython prefix (default: the running one) at `dest`, in PBS `python/` layout.

    The stdlib's `__pycache__` is left out (small test archives) unless `keep_pycache`, as real PBS archives have it.
    """
    if base is None:
        base = Path(sys.base_prefix)
        stdlib, include = Path(sysconfig.get_path("stdlib")), Path(sysconfig.get_path("include"))
    else:
        stdlib, include = base / "lib" / f"python{minor}", base / "include" / f"python{minor}"
    (dest / "bin").mkdir(parents=True)
    exe = dest / "bin" / f"python{minor}"
    shutil.copy2(Path(base / "bin" / f"python{minor}").resolve(), exe)
    for alias in ("python3", "python"):
        (dest / "bin" / alias).symlink_to(f"python{minor}")
    (dest / "lib").mkdir()
    for lib in sorted((base / "lib").glob("libpython*.so*")):
        target = dest / "lib" / lib.name
        if lib.is_symlink():
            target.symlink_to(os.readlink(lib))
        else:
            shutil.copy2(lib, target)
    _copy_stdlib(stdlib, dest / "lib" / f"python{minor}", keep_pycache)
    if include.is_dir():
        shutil.copytree(include, dest / "include" / include.name)
    tool = patchelf()
    strip = shutil.which("strip")
    for elf in [exe, *[p for p in (dest / "lib").glob("libpython*.so*") if not p.is_symlink()]]:
        if strip:  # like PBS's `install_only_stripped`; keeps the fixture small
            subprocess.run([strip, "--strip-unneeded", str(elf)], check=True)
        runpath = "$ORIGIN/../lib" if elf == exe else "$ORIGIN"
        subprocess.run([tool, "--set-rpath", runpath, str(elf)], check=True)
    return dest


def make_tar_gz(tree: Path, archive: Path, top: str = "python") -> Path:
    """`tree` packed as `top/…` into a gzip tarball (fast level; entries sorted)."""
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(tree, arcname=top, recursive=False)
        for path in sorted(tree.rglob("*")):
            tar.add(path, arcname=f"{top}/{path.relative_to(tree).as_posix()}", recursive=False)
    return archive


def tar_gz_of(archive: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    """An archive with exactly these members (data for regular files) — for hostile-archive tests."""
    with tarfile.open(archive, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return archive


def _write_files(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str) and content.startswith("->"):
            path.symlink_to(content[2:])
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
            if rel.startswith("bin/") or rel.endswith(".exe"):
                path.chmod(0o755)
    return root


def windows_layout(minor: str = MINOR) -> dict[str, bytes | str]:
    """Real AMD64 PE files (launchers, not an interpreter): verify's static checks read them."""
    nodot = minor.replace(".", "")
    return {
        "python.exe": pe_file("t64"),
        "pythonw.exe": pe_file("w64"),
        f"python{nodot}.dll": pe_file("t64"),
        "Lib/os.py": "# dummy\n",
        "Lib/site-packages/README.txt": "site-packages\n",
        "DLLs/_ssl.pyd": pe_file("t64"),
        "Scripts/.keep": b"",
    }


def macos_layout(minor: str = MINOR) -> dict[str, bytes | str]:
    """Minimal arm64 Mach-O headers (no interpreter): verify's static checks read them."""
    return {
        f"bin/python{minor}": macho("arm64", dylibs=(f"@executable_path/../lib/libpython{minor}.dylib",)),
        "bin/python3": f"->python{minor}",
        f"lib/libpython{minor}.dylib": macho("arm64", dylibs=("/usr/lib/libSystem.B.dylib",)),
        f"lib/python{minor}/os.py": "# dummy\n",
        f"lib/python{minor}/site-packages/README.txt": "site-packages\n",
        f"include/python{minor}/Python.h": "/* dummy */\n",
    }


@dataclass(frozen=True)
class PbsArchives:
    """Archives built once per session: {platform key: archive path}, all for VERSION and RELEASE."""

    directory: Path
    by_platform: dict[str, Path]


@pytest.fixture(scope="session")
def pbs_archives(tmp_path_factory: pytest.TempPathFactory) -> PbsArchives:
    root = tmp_path_factory.mktemp("pbs-archives")
    work = root / "work"
    found: dict[str, Path] = {}
    stage_host_prefix(work / HOST)
    found[HOST] = make_tar_gz(work / HOST, root / archive_name(VERSION, RELEASE, get_platform(HOST), FLAVOR))
    for key, layout in (("windows-x64", windows_layout()), ("macosx-aarch64", macos_layout())):
        if key == HOST:
            continue
        tree = _write_files(work / key, layout)
        found[key] = make_tar_gz(tree, root / archive_name(VERSION, RELEASE, get_platform(key), FLAVOR))
    shutil.rmtree(work)
    return PbsArchives(root, found)


@dataclass
class PbsMirror:
    """A per-test mirror directory served over HTTP: `<url>/<release>/<archive>` and `SHA256SUMS`."""

    root: Path
    server: StaticServer
    release: str = RELEASE
    sums: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def release_dir(self) -> Path:
        return self.root / self.release

    def name(self, platform_key: str, version: str = VERSION, flavor: str = FLAVOR) -> str:
        return archive_name(version, self.release, get_platform(platform_key), flavor)

    def add(self, archive: Path, name: str, sha256: str | None = None) -> str:
        """Serve `archive` as `name`, listed in SHA256SUMS with its real hash (or `sha256`)."""
        target = self.release_dir / name
        target.unlink(missing_ok=True)
        target.symlink_to(archive)
        self.sums[name] = sha256 or sha256_file(archive)
        self.write_sums()
        return name

    def set_sum(self, name: str, sha256: str) -> str:
        """List `name` in SHA256SUMS with `sha256` (e.g. a wrong one); returns the hash it had."""
        old = self.sums[name]
        self.sums[name] = sha256
        self.write_sums()
        return old

    def write_sums(self) -> None:
        text = "".join(f"{sha}  {name}\n" for name, sha in sorted(self.sums.items()))
        (self.release_dir / SUMS_NAME).write_text(text)

    def write_catalogue(self, path: Path) -> Path:
        """A PBS catalogue (runenv's format) listing every archive this mirror serves, with its hash."""
        releases: dict = {}
        for name, sha in self.sums.items():
            match = ARCHIVE_NAME_RE.match(name)
            assert match, name
            version, release, triple, flavor = match.groups()
            releases.setdefault(release, {}).setdefault(version, {}).setdefault(flavor, {})[triple] = sha
        data = {"source": "tests.helpers.pbs", "generated": "2099-01-01", "releases": releases}
        path.write_text(json.dumps(data, indent=1))
        return path


@pytest.fixture
def pbs_mirror(pbs_archives: PbsArchives, tmp_path: Path) -> Iterator[PbsMirror]:
    root = tmp_path / "mirror"
    (root / RELEASE).mkdir(parents=True)
    with StaticServer(root) as server:
        mirror = PbsMirror(root, server)
        for key, archive in pbs_archives.by_platform.items():
            mirror.add(archive, mirror.name(key))
        yield mirror


@pytest.fixture
def build_workspace(
    make_workspace: Callable[..., Path], pbs_mirror: PbsMirror, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Path]:
    """`build_workspace(runtimes=None, root=None, shared=None)` → a workspace using `pbs_mirror`.

    Default: one runtime named VERSION with `python.release` RELEASE and no packages.
    """
    monkeypatch.setenv("RUNENV_PBS_MIRROR", pbs_mirror.url)

    def make(runtimes: dict[str, dict] | None = None, root: Path | None = None, shared: dict | None = None) -> Path:
        shared = shared if shared is not None else {"python": {"release": RELEASE}}
        return make_workspace(shared=shared, runtimes=runtimes or {VERSION: {}}, root=root)

    return make


@pytest.fixture
def pbs_catalogue(pbs_mirror: PbsMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A catalogue of `pbs_mirror`'s archives (as served when the test starts), used instead of the built-in one."""
    path = pbs_mirror.write_catalogue(tmp_path / "pbs-catalogue.json")
    monkeypatch.setenv("RUNENV_PBS_CATALOGUE", str(path))
    return path
