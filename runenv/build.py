"""Build one runtime for one platform: provision the interpreter, check it, pack it with its manifest."""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from runenv import archive, relocate
from runenv.cache import Cache, sha256_file
from runenv.config.load import LoadedConfig
from runenv.errors import BuildError, UsageError
from runenv.interpreter import SumsSource, check_version, fetch_archive, pbs_archive, require_release
from runenv.manifest import InterpreterInfo, Manifest
from runenv.pack import PackedArtifact, pack, source_date_epoch
from runenv.plan import RuntimePlan, build_plan
from runenv.platforms import Platform, get_platform, host_platform_key, is_host_runnable
from runenv.workspace import Workspace


@dataclass(frozen=True)
class BuildOptions:
    """What the command line decides for every artifact of one `runenv build`."""

    out_dir: Path
    offline: bool = False
    pack_threads: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)  # set to stop builds running in threads


@dataclass
class BuildContext:
    """One (runtime, platform) being built; each step reads and extends it."""

    workspace: Workspace
    loaded: LoadedConfig
    plan: RuntimePlan
    platform: Platform
    prefix: Path  # the staged interpreter prefix that becomes `<stem>/` in the tarball
    cache: Cache
    sums: SumsSource
    options: BuildOptions
    manifest: Manifest | None = None
    mtime: int = 0

    @property
    def stem(self) -> str:
        return self.loaded.runtime.artifact_stem(self.platform.key)

    @property
    def version(self) -> str:
        return self.loaded.runtime.version


@dataclass(frozen=True)
class Artifact:
    """The result of building one runtime for one platform."""

    runtime: str
    platform: str
    path: Path
    sha256: str
    size: int
    manifest: Path

    def as_json(self) -> dict[str, object]:
        return {
            "runtime": self.runtime,
            "platform": self.platform,
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "manifest": str(self.manifest),
        }


Step = Callable[[BuildContext], None]


def provision_interpreter(ctx: BuildContext) -> None:
    """Put the interpreter prefix in place (PBS archive or local prefix) and start the manifest."""
    python = ctx.loaded.config.python
    if python.source == "local":
        src = relocate.provision_local(python.path, ctx.loaded.runtime.config_path, ctx.prefix, ctx.loaded.runtime.minor)
        exe = src / "bin" / f"python{ctx.loaded.runtime.minor}"
        info = InterpreterInfo("local", sha256_file(exe), path=str(src))
        ctx.mtime = source_date_epoch(None)
    else:
        pbs = pbs_archive(ctx.loaded, ctx.platform, ctx.sums)
        timeout = ctx.loaded.config.build.timeout
        path = fetch_archive(pbs, ctx.cache, timeout=timeout, offline=ctx.options.offline)
        archive.extract(path, ctx.prefix, label=pbs.name)
        info = InterpreterInfo(
            "pbs", pbs.sha256, url=pbs.url, release=pbs.release, flavor=pbs.flavor, archive=pbs.name
        )
        ctx.mtime = source_date_epoch(pbs.release)
    build = ctx.loaded.config.build
    ctx.manifest = Manifest(
        runtime=ctx.loaded.runtime.name,
        python=ctx.version,
        platform=ctx.platform.key,
        interpreter=info,
        config_digest=ctx.loaded.digest,
        build={"compression": build.compression, "manylinux": build.manylinux, "distutils-shim": build.distutils_shim},
    )


def verify_interpreter(ctx: BuildContext) -> None:
    """The prefix has the platform's layout; on a host that can run it, it reports the runtime's version."""
    exe = ctx.prefix / ctx.platform.python_exe(ctx.version)
    assert ctx.manifest is not None
    origin = ctx.manifest.interpreter.archive or ctx.manifest.interpreter.path or "the interpreter"
    if not (exe.is_file() or exe.is_symlink()):
        raise BuildError(f"{origin} has no {ctx.platform.python_exe(ctx.version)} for {ctx.platform.key}")
    stdlib = ctx.prefix / ctx.platform.stdlib(ctx.version)
    if not stdlib.is_dir():
        raise BuildError(
            f"{origin} has no {ctx.platform.stdlib(ctx.version)}/: not a Python {ctx.loaded.runtime.minor} "
            f"prefix for {ctx.platform.key}"
        )
    if is_host_runnable(ctx.platform.key):
        check_version(exe, ctx.version, origin)


# The pipeline for one artifact; the package stages slot in between verification and packing.
STEPS: list[Step] = [provision_interpreter, verify_interpreter]


def check_buildable(loaded: LoadedConfig, platform: str) -> None:
    """Refuse combinations that cannot work before anything is fetched or written."""
    python = loaded.config.python
    if python.source == "pbs":
        require_release(loaded)
    else:
        relocate.local_prefix(python.path, loaded.runtime.config_path)
    if python.source == "local" and platform != host_platform_key():
        raise UsageError(
            f"runtime {loaded.runtime.name} uses a local interpreter ({python.path}), "
            f"which can only be built for the host platform, not {platform}"
        )


def build_one(
    ws: Workspace, loaded: LoadedConfig, platform_key: str, cache: Cache, sums: SumsSource, options: BuildOptions
) -> Artifact:
    """Run every step for one (runtime, platform) in a staging directory, then pack; staging is removed."""
    platform = get_platform(platform_key)
    check_buildable(loaded, platform_key)
    plan = build_plan(loaded, platform_key)
    staging_root = ws.state_dir / "build"
    staging_root.mkdir(parents=True, exist_ok=True)
    stem = loaded.runtime.artifact_stem(platform_key)
    staging = Path(tempfile.mkdtemp(dir=staging_root, prefix=f"{stem}."))
    try:
        ctx = BuildContext(ws, loaded, plan, platform, staging / stem, cache, sums, options)
        for step in STEPS:
            if options.cancel.is_set():
                raise KeyboardInterrupt
            step(ctx)
        assert ctx.manifest is not None
        packed: PackedArtifact = pack(
            ctx.prefix, options.out_dir, stem, ctx.manifest, mtime=ctx.mtime, threads=options.pack_threads,
            cancel=options.cancel,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Artifact(loaded.runtime.name, platform_key, packed.path, packed.sha256, packed.size, packed.manifest_path)
