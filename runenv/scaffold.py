"""`runenv new`: a new runtime directory with a minimal valid config."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runenv.errors import UsageError
from runenv.workspace import RUNTIME_CONFIG, Workspace, parse_runtime_dir

SCHEMA_POINTER = "../schema/runenv-config.schema.json"

# python-build-standalone releases known to ship these CPython versions (newest release per version).
KNOWN_RELEASES: dict[str, str] = {
    "3.9.22": "20250517",
    "3.10.17": "20250517",
    "3.11.12": "20250517",
    "3.12.10": "20250517",
    "3.13.3": "20250517",
    "3.9.23": "20250612",
    "3.10.18": "20250612",
    "3.11.13": "20250612",
    "3.12.11": "20250612",
    "3.13.5": "20250612",
    "3.10.14": "20240814",
    "3.11.9": "20240814",
    "3.12.5": "20240814",
}
NEWEST_KNOWN_RELEASE = max(KNOWN_RELEASES.values())


@dataclass(frozen=True)
class Scaffold:
    """The runtime directory written and the release it names (and whether it is a guess)."""

    runtime: str
    config_path: Path
    release: str
    release_known: bool


def release_for(version: str) -> tuple[str, bool]:
    """The PBS release to start from for `version`, and whether the table knows it ships that version."""
    if version in KNOWN_RELEASES:
        return KNOWN_RELEASES[version], True
    return NEWEST_KNOWN_RELEASE, False


def scaffold_runtime(workspace: Workspace, name: str, release: str | None = None) -> Scaffold:
    """Write `python-<name>/config.json`; refuses a malformed name or an existing config."""
    name = name.removeprefix("python-")
    parsed = parse_runtime_dir(f"python-{name}")
    if parsed is None:
        raise UsageError(
            f"invalid runtime name {name!r}",
            hint="expected VERSION[-VARIANT] with a full X.Y.Z version, e.g. 3.12.10 or 3.12.10-slim",
        )
    version, _variant = parsed
    if release is not None and not (release.isdigit() and len(release) == 8):
        raise UsageError(
            f"invalid python-build-standalone release {release!r}", hint="expected a date tag like 20250517"
        )
    chosen, known = (release, True) if release else release_for(version)
    directory = workspace.root / f"python-{name}"
    config_path = directory / RUNTIME_CONFIG
    if config_path.exists() or config_path.is_symlink():
        raise UsageError(
            f"{config_path} already exists; not overwriting it", hint="edit it, or remove it first to start over"
        )
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a directory")
    config = {"$schema": SCHEMA_POINTER, "python": {"release": chosen}}
    directory.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".config-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(config, indent=2) + "\n")
    try:
        os.link(tmp, config_path)  # fails if a config appeared meanwhile; never overwrites
    except FileExistsError:
        raise UsageError(f"{config_path} already exists; not overwriting it") from None
    finally:
        os.unlink(tmp)
    return Scaffold(name, config_path, chosen, known)
