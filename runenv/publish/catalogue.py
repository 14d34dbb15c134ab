"""The catalogue `index.json` at a target's root: runtime → platform → file, size, sha256, Python, time."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Protocol

from runenv.errors import PublishError
from runenv.publish.artifacts import LocalArtifact

CATALOGUE_NAME = "index.json"
FORMAT = 1

Catalogue = dict[str, Any]


class Keyed(Protocol):
    """What names a catalogue entry: a LocalArtifact, or a record read back from a target."""

    @property
    def runtime(self) -> str: ...

    @property
    def platform(self) -> str: ...


Entries = list[tuple[Keyed, dict[str, Any]]]  # an artifact and its catalogue record


def empty_catalogue() -> Catalogue:
    return {"format": FORMAT, "runtimes": {}}


def parse_catalogue(data: bytes, where: str) -> Catalogue:
    """A catalogue read from a target; anything but our JSON shape is an error naming `where`."""
    try:
        catalogue = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PublishError(f"{where}: catalogue is not valid JSON: {exc}") from None
    if not isinstance(catalogue, dict) or not isinstance(catalogue.get("runtimes"), dict):
        raise PublishError(f'{where}: not a runenv catalogue (no "runtimes" object)')
    return catalogue


def render_catalogue(catalogue: Catalogue) -> bytes:
    return (json.dumps(catalogue, indent=2, sort_keys=True) + "\n").encode()


def now_utc() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def catalogue_entry(artifact: LocalArtifact, location: dict[str, str], published: str) -> dict[str, Any]:
    """The record of one published artifact; `location` says where the target keeps it."""
    return {
        **location,
        "size": artifact.size,
        "sha256": artifact.sha256,
        "python_version": artifact.python_version,
        "published": published,
    }


def with_entries(catalogue: Catalogue, entries: Entries) -> Catalogue:
    """A copy of `catalogue` listing `entries`; an unchanged artifact keeps its first published time."""
    runtimes = {rt: dict(platforms) for rt, platforms in catalogue.get("runtimes", {}).items()}
    for artifact, entry in entries:
        platforms = runtimes.setdefault(artifact.runtime, {})
        old = platforms.get(artifact.platform)
        if isinstance(old, dict) and old.get("sha256") == entry["sha256"] and old.get("published"):
            entry = {**entry, "published": old["published"]}
        platforms[artifact.platform] = entry
    return {**catalogue, "format": FORMAT, "runtimes": runtimes}


class CatalogueStore(Protocol):
    def read_catalogue(self) -> Catalogue | None: ...

    def write_catalogue(self, catalogue: Catalogue) -> None: ...


def merge_catalogue(store: CatalogueStore, entries: Entries) -> None:
    """Read the store's catalogue, add `entries`, write it back if that changed it (callers hold the lock)."""
    before = store.read_catalogue()
    after = with_entries(before or empty_catalogue(), entries)
    if after != before:
        store.write_catalogue(after)
