"""Unpacking runtime tarballs: safe extraction, and the shared copy unpacked once per sha256 in the cache."""

from __future__ import annotations

from pathlib import Path

from runenv import archive
from runenv.errors import IntegrityError
from runenv.files import publish_dir
from runenv.ops.stamps import known_sha256
from runenv.owner import owned_dir

UNPACK_PREFIX = ".unpack-"  # `<cache>/runtimes/.unpack-*`: a runtime being unpacked


def extract_tarball(tarball: Path, dest: Path, digests: dict[str, str] | None = None) -> None:
    """Extract `tarball` (keeping its top directory) into `dest`, refusing members that would escape it; with
    `digests`, each file's sha256 by its path relative to `dest`."""
    archive.extract(tarball, dest, label=str(tarball), strip=None, digests=digests)


def single_top_dir(root: Path, tarball: Path) -> Path:
    """The one top-level directory a runtime tarball holds."""
    entries = [p for p in root.iterdir()]
    if len(entries) != 1 or not entries[0].is_dir() or entries[0].is_symlink():
        names = ", ".join(sorted(p.name for p in entries)) or "nothing"
        raise IntegrityError(f"{tarball}: expected one top-level directory, found {names}")
    return entries[0]


def unpack_cached(tarball: Path, cache_root: Path) -> Path:
    """The runtime prefix of `tarball`, unpacked once into `<cache>/runtimes/<sha256>/` (atomically)."""
    sha = known_sha256(tarball, cache_root)
    runtimes = cache_root / "runtimes"
    final = runtimes / sha
    if not final.is_dir():
        with owned_dir(runtimes, UNPACK_PREFIX) as staging:  # a killed unpack is swept by the next one
            extract_tarball(tarball, staging / "tree")
            single_top_dir(staging / "tree", tarball)
            publish_dir(staging / "tree", final)  # lost a race only if the winner's copy is there
    return single_top_dir(final, tarball)
