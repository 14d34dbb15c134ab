"""`runenv new`: a new runtime directory with a minimal valid config."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runenv.build.interpreter.catalogue import RELEASE_TAG_HINT, is_release_tag, load_catalogue
from runenv.config import config_schema
from runenv.errors import UsageError
from runenv.files import atomic_file
from runenv.workspace import RUNTIME_CONFIG, RUNTIME_NAME_HINT, Workspace, parse_runtime_dir

SCHEMA_FILE = "schema/runenv-config.schema.json"  # in the workspace, for editors to complete keys
SCHEMA_POINTER = f"../{SCHEMA_FILE}"  # from python-<runtime>/config.json


@dataclass(frozen=True)
class Scaffold:
    """The runtime directory written, the release it uses and whether that is the catalogue's default."""

    runtime: str
    config_path: Path
    release: str
    catalogued: bool
    schema: Path | None = None  # the JSON Schema the config points at, when this run wrote it


def scaffold_runtime(workspace: Workspace, name: str, release: str | None = None) -> Scaffold:
    """Write `python-<name>/config.json`; refuses a malformed name or an existing config."""
    name = name.removeprefix("python-")
    parsed = parse_runtime_dir(f"python-{name}")
    if parsed is None:
        raise UsageError(
            f"invalid runtime name {name[:80]!r}{'…' if len(name) > 80 else ''}",
            hint=RUNTIME_NAME_HINT.replace("python-", ""),
        )
    version, _variant = parsed
    if release is not None and not is_release_tag(release):
        raise UsageError(f"invalid python-build-standalone release {release[:40]!r}", hint=RELEASE_TAG_HINT)
    catalogue = load_catalogue()
    releases = catalogue.releases_of(version)
    if release is None and not releases:
        raise UsageError(catalogue.not_catalogued(version), hint="pass --release TAG to use a release that ships it")
    directory = workspace.root / f"python-{name}"
    config_path = directory / RUNTIME_CONFIG
    if config_path.exists() or config_path.is_symlink():
        raise UsageError(
            f"{config_path} already exists; not overwriting it", hint="edit it, or remove it first to start over"
        )
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a directory")
    # A catalogued version needs no python section: its release follows the catalogue (see `runenv python pin`).
    config: dict[str, Any] = {"$schema": SCHEMA_POINTER, **({"python": {"release": release}} if release else {})}
    directory.mkdir(exist_ok=True)
    try:
        with atomic_file(config_path, exclusive=True) as fh:  # a config that appeared meanwhile is never overwritten
            fh.write((json.dumps(config, indent=2) + "\n").encode("utf-8"))
    except FileExistsError:
        raise UsageError(f"{config_path} already exists; not overwriting it") from None
    schema = _write_schema(workspace.root / SCHEMA_FILE)
    return Scaffold(name, config_path, release or releases[0], release is None or release in releases, schema)


def _write_schema(path: Path) -> Path | None:
    """The schema the `$schema` pointer names, written when the workspace has none yet (never replaced)."""
    if path.exists() or path.is_symlink():
        return None
    try:
        path.parent.mkdir(exist_ok=True)
        with atomic_file(path, exclusive=True) as fh:
            fh.write((json.dumps(config_schema(), indent=2) + "\n").encode("utf-8"))
    except OSError:  # written meanwhile, or no room for it (a file named schema): the config stands without it
        return None
    return path
