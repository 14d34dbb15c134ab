"""The built artifacts in `dist/` that publish uploads: finding them, and refusing missing or stale ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runenv.artifact_names import (
    TARBALL_SUFFIXES,
    checksum_path,
    find_tarball,
    manifest_path,
    read_checksum,
    tarball_name,
)
from runenv.cache import sha256_file
from runenv.compat import tomllib
from runenv.config import load_runtime_config
from runenv.errors import PublishError
from runenv.ops.freshness import changed_inputs, current_inputs, recorded_inputs
from runenv.workspace import Runtime, Workspace

# Archive suffix → OCI layer media type; the packer writes gzip by default, zstd when configured.
LAYER_MEDIA_TYPES = {
    TARBALL_SUFFIXES["gz"]: "application/vnd.runenv.runtime.layer.v1.tar+gzip",
    TARBALL_SUFFIXES["zst"]: "application/vnd.runenv.runtime.layer.v1.tar+zstd",
}
Sources = Sequence[Path] | None  # directories holding built artifacts (`publish --from`); None: the workspace's dist/


@dataclass(frozen=True)
class LocalArtifact:
    """One built (runtime, platform): the tarball, its `.sha256` and its manifest TOML."""

    runtime: str
    platform: str
    tarball: Path
    sha256: str  # as recorded in the .sha256 file
    size: int
    manifest: Path
    python_version: str

    @property
    def filename(self) -> str:
        return self.tarball.name

    @property
    def checksum_file(self) -> Path:
        return checksum_path(self.tarball)

    @property
    def layer_media_type(self) -> str:
        return next(media for suffix, media in LAYER_MEDIA_TYPES.items() if self.filename.endswith(suffix))

    def files(self) -> list[Path]:
        """Every file to publish, the tarball first (sidecars are only written once it is in place)."""
        return [self.tarball, self.checksum_file, self.manifest]


def build_hint(runtime: str, platform: str) -> str:
    """The command that (re)builds the artifact."""
    return f"run `runenv build {runtime} --platform {platform}`"


def find_tarballs(
    ws: Workspace, rt: Runtime, platform: str, sources: Sources = None, compression: str = "gz"
) -> list[Path]:
    """Every copy of the (runtime, platform) tarball in `sources` (default: dist/), one per directory: the
    configured compression's, else the other's (see `artifact_names.find_tarball`)."""
    found = (find_tarball(directory, rt.artifact_stem(platform), compression) for directory in sources or [ws.dist_dir])
    return [path for path in found if path is not None]


def built_platforms(ws: Workspace, rt: Runtime, platforms: list[str], sources: Sources = None) -> list[str]:
    """Those of `platforms` that have a tarball in dist/ (or in any of `sources`)."""
    return [p for p in platforms if find_tarballs(ws, rt, p, sources)]


def _one_copy(copies: list[Path], hint: str) -> Path:
    """The tarball to publish when several source directories hold it: identical bytes are one artifact."""
    if len(copies) == 1:
        return copies[0]
    first, digest = copies[0], sha256_file(copies[0])
    for other in copies[1:]:
        theirs = sha256_file(other)
        if theirs != digest:
            raise PublishError(
                f"{first.name} differs between {first.parent} (sha256 {digest}) and {other.parent} (sha256 {theirs})",
                hint=hint,
            )
    return first


def _read_checksum(tarball: Path, hint: str) -> str:
    digest = read_checksum(tarball)
    if digest is None:
        raise PublishError(f"{tarball.name}.sha256: not a readable sha256 line for {tarball.name}", hint=hint)
    return digest


def _python_version(manifest: dict[str, Any], fallback: str) -> str:
    """The Python version the manifest records (`python = "X.Y.Z"`), else the runtime's."""
    value = manifest.get("python")
    return value if isinstance(value, str) and value else fallback


def load_artifact(ws: Workspace, rt: Runtime, platform: str, sources: Sources = None) -> LocalArtifact:
    """The built artifact of (runtime, platform); refused when missing, incomplete or stale (by content).

    With several `sources`, copies in more than one of them must hold the same bytes.
    """
    hint = build_hint(rt.name, platform)
    loaded = load_runtime_config(ws, rt)
    compression = loaded.config.build.compression
    copies = find_tarballs(ws, rt, platform, sources, compression)
    if not copies:
        where = ", ".join(str(d) for d in sources or [ws.dist_dir])
        raise PublishError(
            f"runtime {rt.name} is not built for {platform} "
            f"(no {tarball_name(rt.artifact_stem(platform), compression)} in {where})",
            hint=hint,
        )
    tarball = _one_copy(copies, hint)
    checksum = checksum_path(tarball)
    manifest = manifest_path(tarball)
    for path in (tarball, checksum, manifest):
        if path.is_symlink():  # runenv never writes one: what it points at was not built here
            raise PublishError(f"{path} is a symlink; refusing to publish what it points at", hint=hint)
    for needed in (checksum, manifest):
        if not needed.is_file():
            raise PublishError(f"{tarball.name} is incomplete: {needed.name} is missing in {tarball.parent}", hint=hint)
    changed = changed_inputs(recorded_inputs(manifest), current_inputs(ws.root, loaded, platform))
    if changed:
        raise PublishError(f"{tarball.name} is stale: changed since it was built: {', '.join(changed)}", hint=hint)
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PublishError(f"{manifest}: unreadable manifest: {exc}", hint=hint) from None
    return LocalArtifact(
        runtime=rt.name,
        platform=platform,
        tarball=tarball,
        sha256=_read_checksum(tarball, hint),
        size=tarball.stat().st_size,
        manifest=manifest,
        python_version=_python_version(data, rt.version),
    )


def verify_local(artifact: LocalArtifact) -> None:
    """Re-hash the tarball; refuse it when the bytes no longer match its `.sha256`."""
    actual = sha256_file(artifact.tarball)
    if actual != artifact.sha256:
        raise PublishError(
            f"{artifact.tarball} does not match {artifact.checksum_file.name}: file has sha256 {actual}, "
            f"recorded {artifact.sha256}",
            hint=build_hint(artifact.runtime, artifact.platform),
        )
