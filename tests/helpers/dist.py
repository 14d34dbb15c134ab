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
    version = runtime.split("-")[0]
    manifest = f'runtime = "{runtime}"\npython_version = "{version}"\nplatform = "{platform}"\nsalt = "{salt}"\n'
    manifest += inputs_table(ws, runtime, platform)
    members = {
        f"{stem}/runenv-manifest.toml": manifest.encode(),
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
    manifest_path = dist / f"{stem}.manifest.toml"
    manifest_path.write_text(manifest)
    return BuiltArtifact(tarball, digest, tarball.stat().st_size, manifest_path)


def inputs_table(ws: Path, runtime: str, platform: str) -> str:
    """The manifest's `[inputs]` table as `runenv build` records it for the workspace as it is now."""
    from runenv.config import load_runtime_config
    from runenv.freshness import current_inputs
    from runenv.workspace import Workspace

    workspace = Workspace(ws)
    inputs = current_inputs(ws, load_runtime_config(workspace, workspace.runtime(runtime)), platform)
    return "[inputs]\n" + "".join(f'{key} = "{value}"\n' for key, value in sorted(inputs.items()))


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
