"""CLI command: `build`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import typer

from runenv import progress
from runenv.build.interpreter.pbs import SumsSource
from runenv.build.pipeline import Artifact, BuildOptions, build_one, check_buildable
from runenv.cache import Cache
from runenv.cli.app import app, complete_platform, complete_runtime, options, target_platforms
from runenv.cli.progress_ui import duration
from runenv.config import LoadedConfig, load_runtime_config
from runenv.errors import RunenvError, UsageError
from runenv.fetch import Downloader
from runenv.files import usable_dir
from runenv.redact import redact


def _artifact_line(artifact: Artifact) -> str:
    reused = "  (reused: built before from the same inputs)" if artifact.reused else ""
    return f"{artifact.path}  {artifact.size / 1e6:.1f} MB  sha256 {artifact.sha256}{reused}"


def artifact_summary(artifact: Artifact, task: progress.Task) -> str:
    """The progress summary of one artifact: where, how big, which sha256, how long, what came from caches."""
    reused = f" (reused: {', '.join(task.reused)})" if task.reused else ""
    return (
        f"{task.label}: {artifact.path}  {artifact.size / 1e6:.1f} MB  sha256 {artifact.sha256[:12]}  "
        f"in {duration(task.seconds)}{reused}"
    )


@app.command()
def build(
    ctx: typer.Context,
    runtimes: list[str] = typer.Argument(
        None, help="Runtimes to build, e.g. 3.12.10 (or --all).", autocompletion=complete_runtime
    ),
    all_runtimes: bool = typer.Option(False, "--all", help="Build every runtime in the workspace."),
    platform: list[str] = typer.Option(
        [], "--platform", "-p", help="Target platform (repeatable; default: host).", autocompletion=complete_platform
    ),
    all_platforms: bool = typer.Option(False, "--all-platforms", help="Every platform in build.platforms."),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: <workspace>/dist)."),
    jobs: int = typer.Option(
        1, "--jobs", "-j", min=1, show_default=False, help="Artifacts built in parallel (default 1)."
    ),
    offline: bool = typer.Option(False, "--offline", help="Use only the download cache (and a fresh lock)."),
    locked: bool = typer.Option(False, "--locked", help="Fail when a lock is stale or missing instead of re-locking."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip verifying the tarball after packing."),
    rebuild: bool = typer.Option(
        False, "--rebuild", help="Build even when the cache holds an artifact of the same inputs."
    ),
) -> None:
    """Build relocatable runtime tarballs into dist/."""
    opts = options(ctx)
    ws = opts.workspace()
    # Every config and target is checked before anything is fetched or written.
    work: list[tuple[LoadedConfig, str]] = []
    for runtime in ws.select(runtimes or [], all_runtimes):
        loaded = load_runtime_config(ws, runtime)
        for key in target_platforms(loaded, platform, all_platforms, opts.note):
            check_buildable(loaded, key)
            work.append((loaded, key))
    if not work:
        raise UsageError(
            "nothing to build: no runtime or no platform selected",
            hint="check the workspace's python-X.Y.Z/ directories and build.platforms",
        )
    out_dir = usable_dir(out, "--out") if out is not None else ws.dist_dir
    cache = Cache()
    timeout = max(loaded.config.build.timeout for loaded, _ in work)
    sums = SumsSource(Downloader(cache, timeout, offline))
    build_options = BuildOptions(
        out_dir,
        offline=offline,
        locked=locked,
        verify=not no_verify,
        warn=opts.warn,
        reuse=not rebuild,
    )

    def run(item: tuple[LoadedConfig, str]) -> Artifact:
        loaded, key = item
        with progress.task(f"{loaded.runtime.name} {key}", shown) as task:
            artifact = build_one(ws, loaded, key, cache, sums, build_options)
            task.summary = artifact_summary(artifact, task)
        return artifact

    artifacts: list[Artifact] = []
    errors: list[RunenvError] = []
    with opts.reporter() as shown:
        pool = ThreadPoolExecutor(max(1, min(jobs, len(work))))
        try:
            for future in [pool.submit(run, item) for item in work]:
                try:
                    artifacts.append(future.result())
                except RunenvError as exc:
                    errors.append(exc)
        except BaseException:
            build_options.cancel.set()  # running builds stop at their next entry and leave no tarball
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    if artifacts or not errors:
        opts.emit([a.as_json() for a in artifacts], lambda: "\n".join(_artifact_line(a) for a in artifacts))
    for extra in errors[1:]:
        typer.echo(redact(extra.render()), err=True)
    if errors:
        raise errors[0]
