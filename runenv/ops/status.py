"""Whether a runtime's artifact is built and fresh, and which input changed (for `check` and `publish`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runenv import artifact_names
from runenv.artifact_names import artifact_path, read_checksum
from runenv.build.packages.lock import lock_is_fresh
from runenv.config.load import LoadedConfig
from runenv.ops.freshness import changed_inputs, current_inputs, recorded_inputs
from runenv.plan import build_plan
from runenv.workspace import Workspace


def lock_freshness(loaded: LoadedConfig, platform: str) -> bool:
    """Whether the platform's lock exists and matches the current inputs."""
    return lock_is_fresh(loaded, build_plan(loaded, platform))


@dataclass(frozen=True)
class ArtifactStatus:
    """One runtime × platform: built or not, where, how big, which hash, how old, and which inputs changed."""

    runtime: str
    platform: str
    path: Path
    built: bool
    size: int | None = None
    sha256: str | None = None
    age_seconds: float | None = None
    changed_inputs: list[str] = field(default_factory=list)
    lock_fresh: bool | None = None
    note: str = ""  # why only some platforms count (a local interpreter: the host only)

    @property
    def fresh(self) -> bool:
        return self.built and not self.changed_inputs and self.lock_fresh is not False

    def as_json(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "platform": self.platform,
            "path": str(self.path),
            "built": self.built,
            "size": self.size,
            "sha256": self.sha256,
            "ageSeconds": self.age_seconds,
            "changedInputs": self.changed_inputs,
            "lockFresh": self.lock_fresh,
            "fresh": self.fresh,
            **({"note": self.note} if self.note else {}),
        }


def manifest_path(ws: Workspace, loaded: LoadedConfig, platform: str) -> Path:
    """The sidecar manifest `dist/python-<runtime>-<platform>.manifest.toml`."""
    return artifact_names.manifest_path(artifact_path(ws, loaded, platform))


def stale_inputs(ws: Workspace, loaded: LoadedConfig, platform: str) -> list[str]:
    """The inputs that changed since the artifact was built, by content (empty: fresh)."""
    recorded = recorded_inputs(manifest_path(ws, loaded, platform))
    return changed_inputs(recorded, current_inputs(ws.root, loaded, platform))


def artifact_status(ws: Workspace, loaded: LoadedConfig, platform: str, now: float | None = None) -> ArtifactStatus:
    """The status of one runtime × platform."""
    path = artifact_path(ws, loaded, platform)
    name = loaded.runtime.name
    if not path.is_file():
        return ArtifactStatus(name, platform, path, built=False, lock_fresh=lock_freshness(loaded, platform))
    info = path.stat()
    return ArtifactStatus(
        name,
        platform,
        path,
        built=True,
        size=info.st_size,
        sha256=read_checksum(path),
        age_seconds=round((now or time.time()) - info.st_mtime, 1),
        changed_inputs=stale_inputs(ws, loaded, platform),
        lock_fresh=lock_freshness(loaded, platform),
    )
