"""Unpacking runtime tarballs: safe extraction, and the shared copy unpacked once per sha256 in the cache."""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from runenv.cache import sha256_file
from runenv.errors import BuildError, IntegrityError

_FILTER_ERRORS: tuple[type[Exception], ...] = tuple(filter(None, [getattr(tarfile, "FilterError", None)]))


def _check_member(member: tarfile.TarInfo, tarball: Path) -> None:
    """Refuse what the `data` filter refuses, for Pythons that lack it (< 3.10.12 / 3.11.4)."""
    name = PurePosixPath(member.name)
    bad = name.is_absolute() or ".." in name.parts
    if member.issym() or member.islnk():
        base = name.parent if member.issym() else PurePosixPath()
        resolved = posixpath.normpath(str(base / member.linkname))
        bad = bad or member.linkname.startswith("/") or resolved == ".." or resolved.startswith("../")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        bad = True
    if bad:
        raise IntegrityError(f"{tarball}: refusing unsafe archive member {member.name!r}")


def extract_tarball(tarball: Path, dest: Path) -> None:
    """Extract `tarball` into the existing directory `dest`, refusing members that would escape it."""
    try:
        with tarfile.open(tarball, "r:*") as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(dest, filter="data")
            else:
                for member in archive:
                    _check_member(member, tarball)
                archive.extractall(dest)
    except _FILTER_ERRORS as exc:
        raise IntegrityError(f"{tarball}: refusing unsafe archive member: {exc}") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BuildError(f"cannot unpack {tarball}: {exc}") from None


def single_top_dir(root: Path, tarball: Path) -> Path:
    """The one top-level directory a runtime tarball holds."""
    entries = [p for p in root.iterdir()]
    if len(entries) != 1 or not entries[0].is_dir() or entries[0].is_symlink():
        names = ", ".join(sorted(p.name for p in entries)) or "nothing"
        raise IntegrityError(f"{tarball}: expected one top-level directory, found {names}")
    return entries[0]


def unpack_cached(tarball: Path, cache_root: Path) -> Path:
    """The runtime prefix of `tarball`, unpacked once into `<cache>/runtimes/<sha256>/` (atomically)."""
    sha = sha256_file(tarball)
    runtimes = cache_root / "runtimes"
    final = runtimes / sha
    if not final.is_dir():
        runtimes.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=runtimes, prefix=".unpack-"))
        try:
            extract_tarball(tarball, staging)
            single_top_dir(staging, tarball)
            try:
                os.rename(staging, final)
            except OSError:
                if not final.is_dir():  # lost a race only if the winner's copy is there
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return single_top_dir(final, tarball)
