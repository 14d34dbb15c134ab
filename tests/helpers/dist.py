"""Built artifacts in a workspace's dist/, laid out as `runenv build` leaves them (tarball, .sha256, manifest)."""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runenv.build.manifest import InterpreterInfo, Manifest
from runenv.platforms import get_platform

RELEASE, FLAVOR = "20250517", "install_only_stripped"  # make_workspace's default python.release


@dataclass(frozen=True)
class BuiltArtifact:
    tarball: Path
    sha256: str
    size: int
    manifest: Path


def make_artifact(ws: Path, runtime: str, platform: str, *, payload: int = 64 * 1024, salt: str = "") -> BuiltArtifact:
    """Pack a small runtime tree for (runtime, platform) into `ws/dist/` with its `.sha256` and manifest TOML.

    `payload` bytes of incompressible data set the size; another `salt` gives other bytes under the same name.
    """
    stem = f"python-{runtime}-{platform}"
    dist = ws / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    manifest = built_manifest(runtime, platform, inputs=recorded_inputs(ws, runtime, platform))
    members = {
        f"{stem}/runenv-manifest.toml": manifest.to_toml(inside=True).encode(),
        f"{stem}/bin/python3": b"#!/bin/sh\necho python\n",
        f"{stem}/lib/payload.bin": random.Random(f"{runtime}{platform}{salt}").randbytes(payload),
    }
    tarball = dist / f"{stem}.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith("python3") else 0o644
            tar.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    tarball.with_name(tarball.name + ".sha256").write_text(f"{digest}  {tarball.name}\n")
    manifest_path = manifest.write(dist / f"{stem}.manifest.toml")
    return BuiltArtifact(tarball, digest, tarball.stat().st_size, manifest_path)


def built_manifest(runtime: str, platform: str, *, inputs: dict[str, str] | None = None) -> Manifest:
    """The manifest `runenv build` writes for a runtime without packages (from a made-up PBS archive)."""
    archive = f"cpython-{runtime.split('-')[0]}+{RELEASE}-{get_platform(platform).pbs_triple}-{FLAVOR}.tar.gz"
    digest = hashlib.sha256(archive.encode()).hexdigest()
    return Manifest(
        runtime=runtime,
        python=runtime.split("-")[0],
        platform=platform,
        interpreter=InterpreterInfo("pbs", digest, release=RELEASE, flavor=FLAVOR, archive=archive),
        config_digest=(inputs or {}).get("config-digest", ""),
        build={"compression": "gz"},
        inputs=inputs or {},
    )


def recorded_inputs(ws: Path, runtime: str, platform: str) -> dict[str, str]:
    """The manifest's `[inputs]` as `runenv build` records them for the workspace as it is now."""
    from runenv.config import load_runtime_config
    from runenv.ops.freshness import current_inputs
    from runenv.workspace import Workspace

    workspace = Workspace(ws)
    return current_inputs(ws, load_runtime_config(workspace, workspace.runtime(runtime)), platform)


@pytest.fixture
def dist_workspace(make_workspace: Callable[..., Path]) -> Path:
    """A workspace whose runtime 3.12.10 is built for linux-x64 and windows-x64 (3.11.9 is not built)."""
    ws = make_workspace(
        shared={"build": {"platforms": ["linux-x64", "windows-x64", "macosx-aarch64"]}},
        runtimes={"3.12.10": {}, "3.11.9": {}},
    )
    make_artifact(ws, "3.12.10", "linux-x64")
    make_artifact(ws, "3.12.10", "windows-x64")
    return ws


def read_catalogue(root: Path) -> dict[str, Any]:
    return json.loads((root / "index.json").read_text())
