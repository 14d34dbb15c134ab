"""Artifact reuse: a runtime built before from the same inputs is taken from the cache, not rebuilt.

An entry is `<cache>/artifacts/<key>/` holding the tarball, its `.sha256` and sidecar manifest, and
`entry.json` (what it was made from, whether it was verified, with which allowlist). The key digests
every input the tarball's bytes depend on; the entry is written to a temp directory and renamed in
whole, and its tarball is re-hashed before each reuse, so a partial or corrupt entry is never used.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from runenv import settings
from runenv.artifact_names import checksum_path
from runenv.build.interpreter.pbs import SumsSource, pbs_archive
from runenv.build.pack import PackedArtifact, move_artifact, outgoing_dir
from runenv.build.packages.assemble import copy_source
from runenv.build.packages.distutils_shim import shim_enabled
from runenv.build.packages.lock import lock_is_fresh
from runenv.build.verify import settings_for, verify_tarball
from runenv.cache import ARTIFACT_PREFIX, Cache, sha256_file
from runenv.compat import tomllib
from runenv.config.load import LoadedConfig
from runenv.files import publish_dir, write_text_atomic
from runenv.ops.freshness import allowlist_path, current_inputs
from runenv.owner import discard, owned_dir
from runenv.plan import RuntimePlan
from runenv.platforms import Platform
from runenv.workspace import Workspace

# Bump when the same inputs would give other tarball bytes (layout, manifest, packing changes).
ARTIFACT_FORMAT = 4  # 2: verify reports with static, closure and emulated checks; 3: lazy distutils shim;
# 4: one run per layer (gz: all in one member; zst: a frame each)
# Config keys that never change a tarball's bytes.
_IRRELEVANT_BUILD_KEYS = ("timeout", "parallelDownloads", "enableLogging", "platforms")


def _tree_digest(path: Path) -> str:
    """sha256 over the names and contents of a file or directory (what copyFiles takes from it)."""
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(sha256_file(path).encode())
    elif path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{item.relative_to(path).as_posix()}\0{sha256_file(item)}\n".encode())
    else:
        digest.update(b"missing")
    return digest.hexdigest()


def artifact_key(
    loaded: LoadedConfig, platform: str, interpreter_sha256: str, lock: Path, copy_sources: list[Path]
) -> str:
    """The digest of every input of one (runtime, platform) tarball's bytes."""
    config = loaded.config.model_dump(mode="json", by_alias=True)
    config.pop("publish", None)
    for key in _IRRELEVANT_BUILD_KEYS:
        config.get("build", {}).pop(key, None)
    data: dict[str, Any] = {
        "format": ARTIFACT_FORMAT,
        "runtime": loaded.runtime.name,
        "platform": platform,
        "interpreter": interpreter_sha256,
        "lock": sha256_file(lock),
        "config": config,
        "copyFiles": [_tree_digest(p) for p in copy_sources],
        "sourceDateEpoch": settings.current().source_date_epoch,
        "distutilsShim": shim_enabled(loaded.config, loaded.runtime.version),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class CachedArtifact:
    """A reusable entry: its files and what it records about verification."""

    directory: Path
    tarball: Path
    sha256: str
    verified: bool
    allowlist_sha256: str | None
    verify: dict[str, Any] | None


def _entry_dir(cache: Cache, key: str) -> Path:
    return cache.root / "artifacts" / key


def find(cache: Cache, key: str, stem: str) -> CachedArtifact | None:
    """The complete, intact entry for `key`, or None (a damaged entry is moved aside and removed, never used)."""
    directory = _entry_dir(cache, key)
    if not directory.exists():
        return None
    try:
        meta = json.loads((directory / "entry.json").read_text(encoding="utf-8"))
        tarball = directory / meta["tarball"]
        if not (directory / meta["manifest"]).is_file() or not checksum_path(tarball).is_file():
            raise ValueError("a sidecar is missing")  # checked first: it costs a stat, the hash a read of it all
        if not tarball.name.startswith(stem) or sha256_file(tarball) != meta["sha256"]:
            raise ValueError("tarball does not match its entry")
        return CachedArtifact(
            directory, tarball, meta["sha256"], bool(meta["verified"]), meta.get("allowlistSha256"), meta.get("verify")
        )
    except (OSError, ValueError, KeyError, TypeError):  # entries land whole, so anything missing is damage
        discard(directory, cache.root / "tmp", ARTIFACT_PREFIX)
        return None


def store(
    cache: Cache, key: str, artifact: PackedArtifact, *, verified: bool, allowlist_sha256: str | None, verify: Any
) -> None:
    """Copy a finished artifact into the cache under `key` (whole or not at all); failures are not fatal."""
    final = _entry_dir(cache, key)
    if final.exists():
        return
    try:
        with owned_dir(cache.root / "tmp", ARTIFACT_PREFIX) as staging:  # a killed store is swept by the next one
            entry = staging / "entry"
            entry.mkdir()
            for path in (artifact.path, artifact.sha256_path, artifact.manifest_path):
                shutil.copyfile(path, entry / path.name)
            meta = {
                "tarball": artifact.path.name,
                "sha256": artifact.sha256,
                "manifest": artifact.manifest_path.name,
                "verified": verified,
                "allowlistSha256": allowlist_sha256,
                "verify": verify,
            }
            (entry / "entry.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            publish_dir(entry, final)
    except OSError:
        pass  # a full or read-only cache only costs the next build its reuse


def allowlist_digest(workspace_root: Path, platform: str) -> str | None:
    """sha256 of `checks/<platform>.json`, None when there is none."""
    path = allowlist_path(workspace_root, platform)
    return sha256_file(path) if path.is_file() else None


def reuse_key(
    ws: Workspace, loaded: LoadedConfig, plan: RuntimePlan, platform: Platform, sums: SumsSource
) -> str | None:
    """The artifact key when reuse can be decided before building: a PBS interpreter and a fresh lock."""
    if loaded.config.python.source != "pbs" or not lock_is_fresh(loaded, plan):
        return None
    interpreter = pbs_archive(loaded, platform, sums).sha256
    sources = [copy_source(ws.root, entry) for entry in plan.copy_files]
    return artifact_key(loaded, platform.key, interpreter, loaded.runtime.lock_path(platform.key), sources)


def reuse_artifact(
    ws: Workspace,
    loaded: LoadedConfig,
    platform: Platform,
    entry: CachedArtifact,
    out_dir: Path,
    *,
    verify: bool,
    scratch: Path,
    cache_root: Path | None = None,
) -> tuple[PackedArtifact, dict[str, Any] | None]:
    """Put a cached artifact into `out_dir` (via a temp dir beside it, renamed in last) with a sidecar
    manifest for this workspace; verification is redone only when the allowlist differs."""
    meta = json.loads((entry.directory / "entry.json").read_text(encoding="utf-8"))
    with outgoing_dir(out_dir, entry.tarball.name) as outgoing:
        copied = PackedArtifact(
            path=outgoing / entry.tarball.name,
            sha256=entry.sha256,
            size=entry.tarball.stat().st_size,
            sha256_path=checksum_path(outgoing / entry.tarball.name),
            manifest_path=outgoing / meta["manifest"],
        )
        for source in (entry.tarball, entry.directory / copied.sha256_path.name, entry.directory / meta["manifest"]):
            shutil.copyfile(source, outgoing / source.name)
        if sha256_file(copied.path) != entry.sha256:  # the copy is what lands in dist/: checked, not assumed
            raise OSError(f"copy of cached artifact {entry.tarball.name} does not match its sha256")
        manifest = tomllib.loads(copied.manifest_path.read_text(encoding="utf-8"))
        report = entry.verify
        if verify and entry.allowlist_sha256 != allowlist_digest(ws.root, platform.key):
            settings = settings_for(ws.root, loaded, platform.key)
            report = verify_tarball(
                copied.path,
                platform,
                loaded.runtime.version,
                settings,
                scratch=scratch,
                cache_root=cache_root,
                sha256=entry.sha256,
            ).as_json()
        if report is not None:
            manifest["verify"] = report
        manifest["inputs"] = current_inputs(ws.root, loaded, platform.key)
        write_text_atomic(copied.manifest_path, tomli_w.dumps(manifest))
        return move_artifact(copied, out_dir), report
