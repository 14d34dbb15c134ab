"""A real linux-aarch64 runtime for the emulation tests: Debian's arm64 CPython 3.11 laid out as a PBS-style
`python/` prefix, and numpy's cp311 manylinux aarch64 wheel, from the files `.ci/fetch-aarch64` caches in
`$RUNENV_TEST_AARCH64_DIR` (the tests skip, saying why, when they or qemu are missing).

- `aarch64_files()`: the cache directory, or pytest.skip.
- `stage_debian_prefix(debs, dest)`: `dest/` = bin/python3.11 (RUNPATH `$ORIGIN/../lib`), lib/python3.11 (stdlib),
  lib/*.so* (zlib, expat, libffi). Debian's frozen `site` module adds `lib/python3.11/dist-packages`, not
  `site-packages`, so that is a symlink to site-packages, as a PBS layout puts it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runenv.build.interpreter.relocate import patchelf
from runenv.build.verify.launcher import find_launcher
from runenv.platforms import get_platform

ENV = "RUNENV_TEST_AARCH64_DIR"
DEBIAN_VERSION = "3.11.2"  # Debian 12's python3.11: the numpy wheel's cp311 tag fits it


def aarch64_files() -> Path:
    """The cached .deb/.whl files, or skip with the reason."""
    where = os.environ.get(ENV)
    if not where or not (Path(where) / "done").exists():
        pytest.skip(f"no linux-aarch64 test files: run `.ci/fetch-aarch64 DIR` and set {ENV}=DIR")
    launcher, why = find_launcher(get_platform("linux-aarch64"))
    if launcher is None:
        pytest.skip(why)
    return Path(where)


def numpy_wheel(files: Path) -> Path:
    return next(files.glob("numpy-*-cp311-*aarch64*.whl"))


def stage_debian_prefix(files: Path, dest: Path) -> Path:
    """Debian's arm64 python3.11 as a relocatable PBS-style prefix at `dest`."""
    raw = dest.parent / "debs"
    for deb in sorted(files.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(raw)], check=True)
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(raw / "usr/bin/python3.11", dest / "bin/python3.11")
    (dest / "bin/python3").symlink_to("python3.11")
    (dest / "lib").mkdir()
    shutil.copytree(raw / "usr/lib/python3.11", dest / "lib/python3.11", symlinks=True)
    shutil.rmtree(dest / "lib/python3.11/dist-packages", ignore_errors=True)
    (dest / "lib/python3.11/site-packages").mkdir(exist_ok=True)
    (dest / "lib/python3.11/dist-packages").symlink_to("site-packages")
    for libdir in (raw / "usr/lib/aarch64-linux-gnu", raw / "lib/aarch64-linux-gnu"):
        for lib in libdir.glob("*.so*") if libdir.is_dir() else ():
            target = dest / "lib" / lib.name
            target.symlink_to(os.readlink(lib)) if lib.is_symlink() else shutil.copy2(lib, target)
    for link in [p for p in dest.rglob("*") if p.is_symlink() and os.readlink(p).startswith("/")]:
        link.unlink()  # Debian's links into /etc (sitecustomize.py): no part of a relocatable prefix
    subprocess.run([patchelf(), "--set-rpath", "$ORIGIN/../lib", str(dest / "bin/python3.11")], check=True)
    shutil.rmtree(raw)
    return dest
