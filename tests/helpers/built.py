"""Looking at what `runenv build` left behind: dist/, the cache, staging, tarball members and the manifest."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from runenv import owner
from runenv.compat import tomllib
from runenv.scratch import scratch_root


def dist_files(ws: Path) -> list[str]:
    """Names in `<ws>/dist/` (empty when it does not exist)."""
    dist = ws / "dist"
    return sorted(p.name for p in dist.iterdir()) if dist.exists() else []


def cached_blobs(sandbox: Path) -> set[str]:
    """The sha256 hex names in the sandbox's runenv cache."""
    store = sandbox / "runenv-cache" / "sha256"
    return {p.name for p in store.iterdir()} if store.exists() else set()


def leftovers(ws: Path) -> list[Path]:
    """Staging and verify directories a build did not remove (in the workspace or the scratch dir).

    The default RAM scratch is shared with concurrent test runs, so there only dead runs' directories count.
    """
    shared = "RUNENV_SCRATCH_DIR" not in os.environ
    found = []
    for root in dict.fromkeys([ws / ".runenv", scratch_root(ws / ".runenv")]):
        for sub in ("build", "verify"):
            if (root / sub).is_dir():
                found += [
                    p
                    for p in (root / sub).iterdir()
                    if not (shared and root != ws / ".runenv") or owner.state(p) == "dead"
                ]
    return found


def tar_names(path: Path) -> dict[str, tarfile.TarInfo]:
    """Every member of a tarball by name."""
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def read_manifest(ws: Path, stem: str) -> dict[str, Any]:
    """The sidecar manifest `dist/<stem>.manifest.toml`, parsed."""
    return tomllib.loads((ws / "dist" / f"{stem}.manifest.toml").read_text(encoding="utf-8"))


def unpack(ws: Path, stem: str, into: Path) -> Path:
    """`dist/<stem>.tar.gz` extracted with the system tar into `into`; returns `into/<stem>`."""
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["tar", "--warning=no-timestamp", "-xzf", str(ws / "dist" / f"{stem}.tar.gz"), "-C", str(into)], check=True
    )
    return into / stem


def tar_member(path: Path, name: str) -> str:
    """The text of one member of a tarball."""
    with tarfile.open(path) as tar:
        member = tar.extractfile(name)
        assert member is not None, name
        return member.read().decode("utf-8")


def grep_tree(needle: str, *roots: Path) -> list[str]:
    """Every file below `roots` whose bytes contain `needle`, and every such member inside their tarballs."""
    found: list[str] = []
    data = needle.encode()
    for root in roots:
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            if path.is_symlink():
                continue
            if data in path.read_bytes():
                found.append(str(path))
            if path.name.endswith((".tar.gz", ".tar.zst", ".tgz")) and tarfile.is_tarfile(path):
                with tarfile.open(path) as tar:
                    for member in tar:
                        handle = tar.extractfile(member) if member.isreg() else None
                        if handle is not None and data in handle.read():
                            found.append(f"{path}!{member.name}")
    return found
