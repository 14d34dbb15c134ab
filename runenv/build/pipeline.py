"""Build one runtime for one platform, stage by stage: lock and downloads (in the background), interpreter,
install and byte-compile, the beforePack hook, pack, verify; then into dist/ and the artifact cache.

Each stage is a function taking the `BuildContext` and the values earlier stages returned."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runenv import archive, progress
from runenv.build import reuse
from runenv.build.buildlog import build_log
from runenv.build.hooks import run_before_pack
from runenv.build.interpreter import relocate
from runenv.build.interpreter.pbs import SumsSource, fetch_pbs_archive, runtime_release
from runenv.build.interpreter.version import check_version, interpreter_version, version_fix
from runenv.build.manifest import InterpreterInfo, Manifest, PackageEntry, SkippedEntry
from runenv.build.pack import (
    KeptRuns,
    PackedArtifact,
    move_artifact,
    outgoing_dir,
    pack,
    require_compression,
    source_date_epoch,
)
from runenv.build.packages.assemble import WheelToInstall, copy_files, package_entry, place_in_packages_dir
from runenv.build.packages.bytecode import ByteCompiler, compiler_for
from runenv.build.packages.closure import Distribution, check_closure
from runenv.build.packages.distutils_shim import shim_enabled, write_shim
from runenv.build.packages.layers import Layer, materialise
from runenv.build.packages.lock import Lock, LockedPackage, ensure_lock
from runenv.build.packages.sdist import SourceBuild, handle_sdist, handle_vcs
from runenv.build.packages.trees import InstalledTree, TreeBuilder
from runenv.build.packages.vcs import repository_key
from runenv.build.verify import VerifySettings, settings_for, verify_tarball
from runenv.cache import Cache, sha256_file
from runenv.config.load import LoadedConfig
from runenv.credentials import IndexCredentials
from runenv.errors import BuildError, Cancelled, ConfigError, UsageError
from runenv.fetch import AnyOf, Downloader
from runenv.files import write_text_atomic
from runenv.ops.freshness import current_inputs
from runenv.plan import RuntimePlan, build_plan
from runenv.platforms import Platform, RuntimeLayout, get_platform, host_platform_key, is_host_runnable
from runenv.redact import redact
from runenv.scratch import scratch_dir, scratch_root
from runenv.workspace import Workspace


@dataclass(frozen=True)
class BuildOptions:
    """What the command line decides for every artifact of one `runenv build`."""

    out_dir: Path
    offline: bool = False
    locked: bool = False  # fail on a stale or missing lock instead of re-locking
    verify: bool = True  # verify the packed tarball (static checks for every platform, imports where the host runs it)
    pack_threads: int = 0
    warn: Callable[[str], None] = lambda _message: None
    cancel: threading.Event = field(default_factory=threading.Event)  # set to stop builds running in threads
    reuse: bool = True  # take an artifact built before from the same inputs from the cache (`--rebuild`: False)


@dataclass(frozen=True)
class BuildContext:
    """One (runtime, platform) being built: what every stage reads. Stages hand their results on as values."""

    workspace: Workspace
    loaded: LoadedConfig
    plan: RuntimePlan
    platform: Platform
    prefix: Path  # the staged interpreter prefix that becomes `<stem>/` in the tarball
    cache: Cache
    sums: SumsSource
    options: BuildOptions
    stop_downloads: threading.Event = field(default_factory=threading.Event)  # set when the build fails

    @property
    def stem(self) -> str:
        return self.loaded.runtime.artifact_stem(self.platform.key)

    @property
    def stop(self) -> AnyOf:
        """Set when downloads should stop: this build failed, or every build is cancelled (Ctrl-C, SIGTERM)."""
        return AnyOf((self.stop_downloads, self.options.cancel))

    @property
    def version(self) -> str:
        return self.loaded.runtime.version

    @property
    def layout(self) -> RuntimeLayout:
        return RuntimeLayout(self.prefix, self.platform, self.version)

    @property
    def downloader(self) -> Downloader:
        """This build's downloads: its cache, its config's timeout and parallelism, `--offline`, its stop flag."""
        build = self.loaded.config.build
        return Downloader(self.cache, build.timeout, self.options.offline, build.parallel_downloads, self.stop)

    def source_build(self, plan: RuntimePlan) -> SourceBuild:
        """How this build makes wheels from sdists and git checkouts."""
        build = self.loaded.config.build
        return SourceBuild(
            self.layout,
            index=plan.index_options(),
            timeout=build.timeout,
            manylinux=build.manylinux,
            package_root=self.loaded.runtime.directory,
            warn=self.options.warn,
        )


@dataclass(frozen=True)
class Artifact:
    """The result of building one runtime for one platform."""

    runtime: str
    platform: str
    path: Path
    sha256: str
    size: int
    manifest: Path
    verify: dict[str, Any] | None = None  # the verification report, when the host could run the runtime
    reused: bool = False  # taken from the artifact cache: built and verified before from the same inputs

    def as_json(self) -> dict[str, object]:
        return {
            "runtime": self.runtime,
            "platform": self.platform,
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "manifest": str(self.manifest),
            "verify": self.verify,
            "reused": self.reused,
        }


@dataclass(frozen=True)
class Provisioned:
    """The interpreter prefix in place: the manifest it starts (every later stage extends it), and the
    timestamp every packed entry gets."""

    manifest: Manifest
    mtime: int

    @property
    def origin(self) -> str:
        """Where the interpreter came from, for messages: the PBS archive or the local prefix."""
        return self.manifest.interpreter.archive or self.manifest.interpreter.path or "the interpreter"


@dataclass(frozen=True)
class Staged:
    """Everything up to packing: the prefix (in the context), the layers laid over it, the manifest so far."""

    manifest: Manifest
    mtime: int
    layers: list[Layer]  # laid over the prefix when packing (installed trees, then what the build wrote)


class Arrivals:
    """The files the download stage puts in the cache, each waited for by sha256 as it lands, or its error."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._files: dict[str, Future[Path]] = {}
        self._error: BaseException | None = None

    def _future(self, sha256: str) -> Future[Path]:
        with self._guard:
            future = self._files.get(sha256)
            if future is None:
                future = self._files[sha256] = Future()
                if self._error is not None:
                    future.set_exception(self._error)
            return future

    def landed(self, sha256: str, path: Path) -> None:
        self._future(sha256).set_result(path)

    def failed(self, error: BaseException) -> None:
        """Every file not landed yet, now or later asked for, raises `error` (the download stage's first)."""
        with self._guard:
            self._error = error
            pending = [future for future in self._files.values() if not future.done()]
        for future in pending:
            future.set_exception(error)

    def wait(self, sha256: str) -> Path:
        return self._future(sha256).result()


def lock_packages(ctx: BuildContext) -> Lock:
    """Stage "lock": reuse the fresh lock for this platform or make it (`--locked`/`--offline`: never make it)."""
    with progress.phase("lock") as step:
        result = ensure_lock(
            ctx.loaded, ctx.plan, locked=ctx.options.locked, offline=ctx.options.offline, warn=ctx.options.warn
        )
        step.detail = f"{len(result.lock.packages)} packages" + ("" if result.written else ", fresh lock reused")
        if not result.written:
            progress.reused("lock")
    return result.lock


def fetch_packages(ctx: BuildContext, lock: Lock, arrivals: Arrivals) -> None:
    """Stage "downloads": every file the lock names into the cache, in parallel, each announced as it lands."""
    try:
        files = [p.sha256 for p in lock.packages if p.kind != "vcs"]
        with progress.phase("downloads", unit="B") as step:
            cached = sum(ctx.cache.has(sha) for sha in files)
            step.detail = f"{len(files)} files, {cached} cached" if files else "nothing to download"
            if cached:
                progress.reused(f"{cached}/{len(files)} downloads")
            ctx.downloader.fetch(
                lock.downloads(),
                on_done=arrivals.landed,
                auth_for=IndexCredentials.for_indexes(ctx.plan.registries).auth_for,
            )
    except BaseException as exc:  # the first error, once every other download has finished
        arrivals.failed(exc)
        raise


def _fetch_locked(ctx: BuildContext, locking: Future[Lock], arrivals: Arrivals) -> None:
    """The download stage, once the lock stage (running beside it) has its lock."""
    try:
        lock = locking.result()
    except BaseException as exc:
        arrivals.failed(exc)
        raise
    fetch_packages(ctx, lock, arrivals)


def provision_interpreter(ctx: BuildContext) -> Provisioned:
    """Stage "interpreter": put the interpreter prefix in place (PBS archive or local prefix), start the manifest."""
    with progress.phase("interpreter", unit="B") as step:
        provisioned = _provision(ctx)
        interpreter = provisioned.manifest.interpreter
        step.detail = interpreter.archive or interpreter.path or ""
        if interpreter.archive and not step.done:
            step.detail += ", cached"
            progress.reused("interpreter archive")
    return provisioned


def _provision(ctx: BuildContext) -> Provisioned:
    python = ctx.loaded.config.python
    if python.source == "local":
        src = relocate.provision_local(
            python.path, ctx.loaded.runtime.config_path, ctx.prefix, ctx.loaded.runtime.minor
        )
        exe = src / "bin" / f"python{ctx.loaded.runtime.minor}"
        info = InterpreterInfo("local", sha256_file(exe), path=str(src))
        mtime = source_date_epoch(None)
    else:
        pbs, path = fetch_pbs_archive(ctx.loaded, ctx.platform, ctx.sums, ctx.downloader)
        archive.extract(path, ctx.prefix, label=pbs.name)
        info = InterpreterInfo(
            "pbs", pbs.sha256, url=redact(pbs.url), release=pbs.release, flavor=pbs.flavor, archive=pbs.name
        )
        mtime = source_date_epoch(pbs.release)
    build = ctx.loaded.config.build
    manifest = Manifest(
        runtime=ctx.loaded.runtime.name,
        python=ctx.version,
        platform=ctx.platform.key,
        interpreter=info,
        config_digest=ctx.loaded.digest,
        build={"compression": build.compression, "manylinux": build.manylinux, "distutils-shim": build.distutils_shim},
    )
    return Provisioned(manifest, mtime)


def check_interpreter(ctx: BuildContext, provisioned: Provisioned) -> None:
    """The prefix has the platform's layout; on a host that can run it, it reports the runtime's version."""
    exe, origin = ctx.layout.python, provisioned.origin
    if not (exe.is_file() or exe.is_symlink()):
        raise BuildError(f"{origin} has no {ctx.platform.python_exe(ctx.version)} for {ctx.platform.key}")
    stdlib = ctx.prefix / ctx.platform.stdlib(ctx.version)
    if not stdlib.is_dir():
        raise BuildError(
            f"{origin} has no {ctx.platform.stdlib(ctx.version)}/: not a Python {ctx.loaded.runtime.minor} "
            f"prefix for {ctx.platform.key}"
        )
    if is_host_runnable(ctx.platform.key):
        check_version(exe, ctx.version, origin, local=ctx.loaded.config.python.source == "local")


def _vcs_wheel(ctx: BuildContext, plan: RuntimePlan, package: LockedPackage, sources: SourceBuild) -> Path:
    """The wheel of a locked git package, fetched with the configured URL (which may hold credentials)."""
    configured = [p for p in plan.packages if p.vcs and repository_key(p.vcs.url) == repository_key(package.url)]
    return handle_vcs(
        package,
        sources,
        ctx.downloader,
        fetch_url=configured[0].vcs.url if configured and configured[0].vcs else package.url,
        spec=configured[0].build_wheel if configured else None,
    )


def _shim_over_layers(ctx: BuildContext, trees: list[InstalledTree], overlay: Path) -> None:
    """Put the `sitecustomize.py` the layers below would give into `overlay`, for `write_shim` to judge."""
    rel = f"{ctx.platform.site_packages(ctx.version)}/sitecustomize.py"
    below = [tree.root / rel for tree in trees if rel in tree.files] or [ctx.prefix / rel]
    if below[-1].is_file():
        shutil.copy2(below[-1], overlay / rel)


def install_packages(ctx: BuildContext, provisioned: Provisioned, lock: Lock, arrivals: Arrivals) -> Staged:
    """Stages "install" and "byte-compile": build sdists, install wheels (each as soon as it is downloaded, as
    installed-tree cache entries), copy files, add the distutils shim, byte-compile what the build wrote."""
    manifest, build, version = provisioned.manifest, ctx.loaded.config.build, ctx.version
    # Bare git dependencies under the names the lock learned from their metadata.
    plan = build_plan(ctx.loaded, ctx.platform.key, vcs_names=lock.vcs_names) if lock.vcs_names else ctx.plan
    requested = {p.name for p in plan.installable}
    shipped: list[PackageEntry] = []
    built_dir = ctx.prefix.parent / "wheels"
    sources = ctx.source_build(plan)

    def arriving() -> Iterator[WheelToInstall]:
        """The wheels to install in lock order, each once its file is in the cache (sdists built or shipped)."""
        for package in lock.packages:
            if package.kind == "vcs":
                wheel = _vcs_wheel(ctx, plan, package, sources)
                yield WheelToInstall(wheel, wheel.name, package, "built-from-vcs")
                continue
            blob = arrivals.wait(package.sha256)
            if package.kind == "wheel":
                yield WheelToInstall(blob, package.filename, package)
                continue
            outcome = handle_sdist(
                blob,
                package,
                sources,
                built_dir,
                ship_sdists=build.ship_sdists,
                spec=plan.build_spec(package.name),
            )
            if outcome.wheel is not None:
                yield WheelToInstall(outcome.wheel, outcome.wheel.name, package, "built-from-sdist")
            else:
                shipped.append(
                    PackageEntry(package.name, package.version, package.sha256, "shipped-sdist", package.index)
                )

    compiler = compiler_for(ctx.layout)
    overlay = ctx.prefix.parent / "written" / ctx.stem  # what this build writes over the trees: same top name
    overlay.mkdir(parents=True)
    items: list[WheelToInstall] = []
    with TreeBuilder(ctx.cache, ctx.platform, version, compiler) as builder:
        with progress.phase("install", total=len(lock.packages)) as step:
            pending = []
            for item in arriving():
                items.append(item)
                tree = builder.submit(item)
                tree.add_done_callback(lambda _done: step.advance())
                pending.append(tree)
                if build.wheelhouse:
                    place_in_packages_dir(overlay, item.path, item.filename)
            trees = [tree.result() for tree in pending]
            step.detail = f"{len(trees)} packages"
    installed = [package_entry(item) for item in items]
    site = ctx.platform.site_packages(version)
    written = copy_files(ctx.workspace.root, RuntimeLayout(overlay, ctx.platform, version), plan.copy_files)
    if shim_enabled(ctx.loaded.config, version):
        (overlay / site).mkdir(parents=True, exist_ok=True)  # the overlay holds only what this build writes
        _shim_over_layers(ctx, trees, overlay)
        result = write_shim(overlay / site)
        if result.written:
            written.append(result.path)
        if result.warning:
            ctx.options.warn(result.warning)
    with progress.phase("byte-compile"), ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        with (
            ByteCompiler(ctx.layout, compiler=compiler, pool=pool) as interpreter_files,
            ByteCompiler(RuntimeLayout(overlay, ctx.platform, version), compiler=compiler, pool=pool) as overlay_files,
        ):
            # The interpreter's own site-packages files, except those a tree or this build writes over.
            shadowed = [rel for tree in trees for rel in tree.files]
            shadowed += [p.relative_to(overlay).as_posix() for p in overlay.rglob("*")]
            interpreter_files.exclude(ctx.prefix / rel for rel in shadowed)
            interpreter_files.finish()
            overlay_files.finish(rewritten=written)
    layers = [*(tree.layer() for tree in trees), Layer(overlay)]
    check_closure(
        [layer.root / site for layer in [Layer(ctx.prefix), *layers]],
        plan,
        ctx.platform.marker_environment(version),
        shipped=[Distribution(e.name, e.version) for e in shipped],
        excluded_only=ctx.options.verify,
    )
    for entry in [*installed, *shipped]:
        manifest.packages.append(replace(entry, requested=entry.name in requested))
    manifest.skipped.extend(
        SkippedEntry(p.name, p.reason or "skipped by config", plan.platform)
        for p in plan.packages
        if p.action == "skip"
    )
    manifest.skipped.extend(lock.skipped)
    manifest.kept.extend(lock.kept)
    return Staged(manifest, provisioned.mtime, layers)


def before_pack(ctx: BuildContext, staged: Staged) -> Staged:
    """Stage "beforePack hook": the platform's hook runs on the finished runtime, the layers first copied into
    the prefix so the hook sees (and may change) all of it; without a hook the layers stay as they are."""
    command = ctx.loaded.config.build.hooks.before_pack_for(ctx.platform.key)
    if command is None:
        return staged
    materialise(ctx.prefix, staged.layers)
    run_before_pack(command, ctx.workspace.root, ctx.prefix, ctx.platform.key, ctx.loaded.runtime.name)
    staged.manifest.build["before-pack-hook"] = command
    return replace(staged, layers=[])


def check_interpreter_config(loaded: LoadedConfig) -> None:
    """The interpreter source is complete: a PBS release, or a local prefix holding the runtime's Python."""
    python = loaded.config.python
    if python.source == "pbs":
        runtime_release(loaded)
        return
    runtime = loaded.runtime
    exe = relocate.local_interpreter(python.path, runtime.config_path, runtime.minor)
    actual = interpreter_version(exe)
    if actual != runtime.version:
        raise ConfigError(
            f"{runtime.config_path}: python.path {exe.parent.parent} holds Python {actual}, "
            f"but runtime {runtime.name} needs {runtime.version}",
            hint=version_fix(runtime.version, actual, local=True),
        )


def check_buildable(loaded: LoadedConfig, platform: str) -> None:
    """Refuse combinations that cannot work before anything is fetched or written."""
    check_interpreter_config(loaded)
    source_date_epoch()  # a malformed SOURCE_DATE_EPOCH
    require_compression(loaded.config.build.compression)
    python = loaded.config.python
    if python.source == "local" and platform != host_platform_key():
        raise UsageError(
            f"runtime {loaded.runtime.name} uses a local interpreter ({python.path}), "
            f"which can only be built for the host platform, not {platform}"
        )


def wants_verify(options: BuildOptions, platform_key: str) -> bool:
    """Whether this build verifies its tarball: asked for (static checks run for every platform, imports where
    the host runs it)."""
    return options.verify


def build_one(
    ws: Workspace, loaded: LoadedConfig, platform_key: str, cache: Cache, sums: SumsSource, options: BuildOptions
) -> Artifact:
    """Build one (runtime, platform), recorded in a build log when `build.enableLogging` is on."""
    with build_log(ws, loaded, platform_key):
        return _build_one(ws, loaded, platform_key, cache, sums, options)


def _build_one(
    ws: Workspace, loaded: LoadedConfig, platform_key: str, cache: Cache, sums: SumsSource, options: BuildOptions
) -> Artifact:
    """The stages of one (runtime, platform): checks, reuse, stage and pack, verify, into dist/, remember."""
    platform = get_platform(platform_key)
    check_buildable(loaded, platform_key)
    plan = build_plan(loaded, platform_key)
    settings = settings_for(ws.root, loaded, platform_key) if wants_verify(options, platform_key) else None
    scratch = scratch_root(ws.state_dir)  # settings_for first: bad allowlists exit 2 before anything is written
    key = reuse.reuse_key(ws, loaded, plan, platform, sums) if options.reuse else None
    if key is not None and (cached := from_cache(ws, loaded, platform, cache, key, options, scratch)) is not None:
        return cached
    # Packed and verified beside dist/ (same file system), then renamed in: a failed or interrupted
    # build neither leaves an unverified tarball nor removes the previous good one; one that was killed
    # leaves an owned temp dir the next build into this directory sweeps.
    stem = loaded.runtime.artifact_stem(platform_key)
    with outgoing_dir(options.out_dir, stem) as outgoing:
        with scratch_dir(scratch / "build", stem) as staging:
            ctx = BuildContext(ws, loaded, plan, platform, staging / stem, cache, sums, options)
            staged = stage(ctx)
            packed = pack_staged(ctx, staged, outgoing)
        verify = verify_packed(ctx, packed, settings, scratch) if settings is not None else None
        manifest = staged.manifest
        manifest.verify = verify
        # What the artifact was made from goes beside it only: the tarball's bytes stay content-only.
        manifest.inputs = current_inputs(ws.root, loaded, platform_key)
        write_text_atomic(packed.manifest_path, manifest.to_toml())
        final = move_artifact(packed, options.out_dir)
    if options.reuse:
        remember(ws, loaded, plan, platform, cache, sums, final, verify, key)
    return Artifact(
        loaded.runtime.name, platform_key, final.path, final.sha256, final.size, final.manifest_path, verify
    )


def from_cache(
    ws: Workspace,
    loaded: LoadedConfig,
    platform: Platform,
    cache: Cache,
    key: str,
    options: BuildOptions,
    scratch: Path,
) -> Artifact | None:
    """The artifact built before from the same inputs, placed in dist/ (verified again when the allowlist
    changed); None when the cache holds none this build may use."""
    hit = reuse.find(cache, key, loaded.runtime.artifact_stem(platform.key))
    if hit is None or not (hit.verified or not wants_verify(options, platform.key)):
        return None
    progress.reused("artifact")
    options.out_dir.mkdir(parents=True, exist_ok=True)
    placed, report = reuse.reuse_artifact(
        ws,
        loaded,
        platform,
        hit,
        options.out_dir,
        verify=wants_verify(options, platform.key),
        scratch=scratch / "verify",
        cache_root=cache.root,
    )
    return Artifact(
        loaded.runtime.name,
        platform.key,
        placed.path,
        placed.sha256,
        placed.size,
        placed.manifest_path,
        report,
        reused=True,
    )


def stage(ctx: BuildContext) -> Staged:
    """The stages up to packing, in order. The lock and then its downloads run in background threads beside the
    interpreter stage; installing takes each wheel as soon as it has landed."""
    arrivals = Arrivals()
    with ThreadPoolExecutor(max_workers=2) as background:
        locking = background.submit(progress.carry(lock_packages), ctx)
        fetching = background.submit(progress.carry(_fetch_locked), ctx, locking, arrivals)
        try:
            _go_on(ctx)
            provisioned = provision_interpreter(ctx)
            _go_on(ctx)
            check_interpreter(ctx, provisioned)
            _go_on(ctx)
            staged = install_packages(ctx, provisioned, locking.result(), arrivals)
            _go_on(ctx)
            staged = before_pack(ctx, staged)
        except BaseException:
            ctx.stop_downloads.set()  # the error is not kept waiting for downloads nobody needs
            raise
    fetching.result()  # every download landed: installing waited for each
    return staged


def _go_on(ctx: BuildContext) -> None:
    """Between stages: stop when every build is being cancelled."""
    if ctx.options.cancel.is_set():
        raise Cancelled()


def pack_staged(ctx: BuildContext, staged: Staged, outgoing: Path) -> PackedArtifact:
    """Stage "pack": the staged prefix and its layers as the tarball (with .sha256 and sidecar) in `outgoing`."""
    with progress.phase("pack", unit="B") as packing:
        packed = pack(
            ctx.prefix,
            outgoing,
            ctx.stem,
            staged.manifest,
            mtime=staged.mtime,
            threads=ctx.options.pack_threads,
            cancel=ctx.options.cancel,
            compression=ctx.loaded.config.build.compression,
            layers=staged.layers,
            kept=KeptRuns(ctx.cache.root),
        )
        packing.advance(packed.size)
    return packed


def verify_packed(ctx: BuildContext, packed: PackedArtifact, settings: VerifySettings, scratch: Path) -> dict[str, Any]:
    """Stage "verify": the packed tarball (a report of these bytes under these checks is reused); its report as
    JSON."""
    with progress.phase("verify") as checking:
        report = verify_tarball(
            packed.path,
            ctx.platform,
            ctx.version,
            settings,
            scratch=scratch / "verify",
            cache_root=ctx.cache.root,
            sha256=packed.sha256,
            reuse=ctx.options.reuse,
        )
        checking.detail = report.summary()
    if report.reused:
        progress.reused("verification")
    for notice in report.notices():
        ctx.options.warn(notice)
    return report.as_json()


def remember(
    ws: Workspace,
    loaded: LoadedConfig,
    plan: RuntimePlan,
    platform: Platform,
    cache: Cache,
    sums: SumsSource,
    final: PackedArtifact,
    verify: dict[str, Any] | None,
    key: str | None,
) -> None:
    """Keep the artifact in the cache for a later build of the same inputs (the key known once the lock is)."""
    key = key or reuse.reuse_key(ws, loaded, plan, platform, sums)
    if key is None:
        return
    reuse.store(
        cache,
        key,
        final,
        verified=verify is not None,
        allowlist_sha256=reuse.allowlist_digest(ws.root, platform.key),
        verify=verify,
    )
