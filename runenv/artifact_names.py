"""The files of a built artifact: `python-<runtime>-<platform>` with `.tar.gz` or `.tar.zst`, its `.sha256` and
`.manifest.toml`, the temp names they are written under, and the pattern cleanup recognises them by."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from runenv.errors import StepError
from runenv.platforms import PLATFORM_KEYS

if TYPE_CHECKING:
    from runenv.config.load import LoadedConfig
    from runenv.workspace import Workspace

# build.compression → tarball suffix; the first is the default.
TARBALL_SUFFIXES = {"gz": ".tar.gz", "zst": ".tar.zst"}
CHECKSUM_SUFFIX = ".sha256"
MANIFEST_SUFFIX = ".manifest.toml"
STEM_PREFIX = "python-"
PART_SUFFIX = ".part"  # a file being written beside its final name (files.atomic_file): `.<final name>.<random>.part`
# A directory an artifact is packed or copied into beside dist/ before it moves in: `.<stem>.<random>.tmp`.
OUTGOING_PREFIX, OUTGOING_SUFFIX = f".{STEM_PREFIX}", ".tmp"
VARIANT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"  # as in a runtime directory name (runenv.workspace)


def artifact_stem(runtime: str, platform: str) -> str:
    """`python-<runtime>-<platform>`: the base name of every file of the artifact and the tarball's top directory."""
    return f"{STEM_PREFIX}{runtime}-{platform}"


def tarball_name(stem: str, compression: str) -> str:
    return stem + TARBALL_SUFFIXES[compression]


def checksum_path(tarball: Path) -> Path:
    """`<tarball>.sha256`, beside it."""
    return tarball.with_name(tarball.name + CHECKSUM_SUFFIX)


def manifest_path(tarball: Path) -> Path:
    """`<stem>.manifest.toml`, beside the tarball."""
    return tarball.with_name(stem_of(tarball.name) + MANIFEST_SUFFIX)


def stem_of(tarball: str) -> str:
    """The stem of a tarball file name (the name itself when it has no tarball suffix)."""
    for suffix in TARBALL_SUFFIXES.values():
        if tarball.endswith(suffix):
            return tarball.removesuffix(suffix)
    return tarball


def outgoing_prefix(name: str) -> str:
    """The prefix of the temp directory the artifact named `name` is packed or copied into."""
    return f".{name}."


def built_tarballs(directory: Path, stem: str) -> list[Path]:
    """The artifact's tarballs in `directory`, one per compression that was built."""
    return [path for suffix in TARBALL_SUFFIXES.values() if (path := directory / (stem + suffix)).is_file()]


def find_tarball(directory: Path, stem: str, compression: str = "gz") -> Path | None:
    """The artifact's tarball in `directory`: the configured compression's first, else one with the other
    (built before the config changed: there, but stale), else None."""
    built = built_tarballs(directory, stem)
    preferred = directory / tarball_name(stem, compression)
    return preferred if preferred in built else next(iter(built), None)


def checksum_line(sha256: str, tarball: Path) -> str:
    """The `.sha256` file's content: `<hex>  <name>`, as sha256sum writes it."""
    return f"{sha256}  {tarball.name}\n"


def read_checksum(tarball: Path) -> str | None:
    """The sha256 recorded beside a tarball in `<tarball>.sha256` (`<hex>  <name>`), or None if unreadable."""
    try:
        words = checksum_path(tarball).read_text(encoding="utf-8").split()
    except OSError:
        return None
    digest = words[0].lower() if words else ""
    return digest if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest) else None


def _alternatives(values: Iterable[str]) -> str:
    return "|".join(map(re.escape, values))


# Everything above, finished or half-written: what `runenv cleanup` removes from dist/.
ARTIFACT_RE = re.compile(
    rf"^\.?{re.escape(STEM_PREFIX)}\d+\.\d+\.\d+(?:-{VARIANT_PATTERN})?-(?:{_alternatives(PLATFORM_KEYS)})"
    rf"(?:(?:{_alternatives(TARBALL_SUFFIXES.values())})(?:{re.escape(CHECKSUM_SUFFIX)})?|{re.escape(MANIFEST_SUFFIX)})?"
    rf"(?:[.-][\w.-]*(?:{re.escape(OUTGOING_SUFFIX)}|{re.escape(PART_SUFFIX)}))?$"
)


def artifact_path(ws: Workspace, loaded: LoadedConfig, platform: str) -> Path:
    """`dist/python-<runtime>-<platform>.tar.gz` (`.tar.zst` with `build.compression: zst`); one built with the
    other compression when only that one is there (it is reported as stale, not as missing)."""
    stem, compression = loaded.runtime.artifact_stem(platform), loaded.config.build.compression
    return find_tarball(ws.dist_dir, stem, compression) or ws.dist_dir / tarball_name(stem, compression)


def require_artifact(ws: Workspace, loaded: LoadedConfig, platform: str) -> Path:
    """The built tarball, or a one-line error saying how to build it."""
    path = artifact_path(ws, loaded, platform)
    if not path.is_file():
        raise StepError(
            f"runtime {loaded.runtime.name} is not built for {platform}: {path} does not exist",
            hint=f"run: runenv build {loaded.runtime.name} --platform {platform}",
        )
    return path
