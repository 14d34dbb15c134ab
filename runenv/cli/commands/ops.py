"""CLI commands: `verify`, `check`, `cleanup`, `new`."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import typer

from runenv import progress
from runenv.artifact_names import require_artifact
from runenv.build.verify import VerifyError, VerifyReport, settings_for, verify_tarball
from runenv.cache import default_cache_dir
from runenv.cli.app import app, complete_platform, complete_runtime, options
from runenv.config import load_runtime_config
from runenv.errors import UsageError
from runenv.ops.cleanup import CleanupPlan, execute, plan_cleanup
from runenv.ops.scaffold import scaffold_runtime
from runenv.ops.status import ArtifactStatus, artifact_status
from runenv.plan import configured_platforms
from runenv.platforms import get_platform, host_platform_key
from runenv.scratch import scratch_root
from runenv.workspace import Workspace


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{int(seconds // length)}{unit}"
    return f"{int(seconds)}s"


def _report_text(report: VerifyReport) -> str:
    lines = [report.summary()]
    for check, run in report.checks.items():
        lines.append(f"  {check}: " + ("ran " + run.note if run.ran else "did not run: " + run.note).strip())
    for failure in report.allowed:
        lines.append(f"  allowed: {failure.describe(report.platform)}")
    for failure in report.failures:
        lines.append(f"  FAILED: {failure.describe(report.platform)}")
        lines.extend(f"    {line}" for line in failure.detail.splitlines())
    return "\n".join(lines)


@app.command()
def verify(
    ctx: typer.Context,
    runtime: str = typer.Argument(..., help="Runtime name, e.g. 3.12.10.", autocompletion=complete_runtime),
    platform: list[str] = typer.Option(
        None,
        "--platform",
        "-p",
        help="Platform key, repeatable (default: this machine's).",
        autocompletion=complete_platform,
    ),
    all_platforms: bool = typer.Option(
        False, "--all-platforms", help="Every platform of build.platforms that is built."
    ),
    recheck: bool = typer.Option(
        False, "--recheck", help="Check again even when these tarball bytes passed the same checks before."
    ),
) -> None:
    """Prove a built runtime: static checks for any platform; imports, console scripts and the relocation
    smoke test where this host runs it (natively, or linux-aarch64 under qemu)."""
    opts = options(ctx)
    ws = opts.workspace()
    loaded = load_runtime_config(ws, ws.runtime(runtime))
    if all_platforms and platform:
        raise UsageError("give --platform or --all-platforms, not both")
    keys = list(loaded.config.build.platforms) if all_platforms else list(platform or [host_platform_key() or ""])
    targets = [get_platform(key) for key in dict.fromkeys(keys)]
    if all_platforms:
        built = [t for t in targets if artifact_status(ws, loaded, t.key).built]
        for missing in (t for t in targets if t not in built):
            opts.warn(f"runtime {loaded.runtime.name} is not built for {missing.key}: not verified")
        targets = built or [targets[0]]  # none built: require_artifact says how to build one
    jobs = [(t, require_artifact(ws, loaded, t.key), settings_for(ws.root, loaded, t.key)) for t in targets]
    scratch = scratch_root(ws.state_dir) / "verify"
    cache_root = default_cache_dir()
    reports: list[VerifyReport] = []
    error: VerifyError | None = None
    with opts.reporter() as shown:
        for target, tarball, settings in jobs:
            try:
                with progress.task(f"{loaded.runtime.name} {target.key}", shown), progress.phase("verify") as step:
                    report = verify_tarball(
                        tarball,
                        target,
                        loaded.runtime.version,
                        settings,
                        scratch=scratch,
                        cache_root=cache_root,
                        reuse=not recheck,
                    )
                    step.detail = f"{tarball.name}: {report.summary()}"
            except VerifyError as exc:
                report, error = exc.report, error or exc
            reports.append(report)
            for notice in report.notices():
                opts.warn(notice)
    data = [r.as_json() for r in reports]
    opts.emit(data if all_platforms or len(data) > 1 else data[0], lambda: "\n".join(map(_report_text, reports)))
    if error is not None:
        raise error


def _check_text(rows: list[ArtifactStatus], root: Path) -> str:
    def state(row: ArtifactStatus) -> str:
        if not row.built:
            return "missing"
        if row.fresh:
            return "fresh"
        reasons = [f"changed: {', '.join(row.changed_inputs)}"] if row.changed_inputs else []
        reasons += ["lock stale"] if row.lock_fresh is False else []
        return "stale (" + "; ".join(reasons) + ")"

    table = [("RUNTIME", "PLATFORM", "SIZE", "AGE", "SHA256", "STATUS", "PATH")]
    for row in rows:
        path = row.path.relative_to(root) if row.path.is_relative_to(root) else row.path
        table.append(
            (
                row.runtime,
                row.platform,
                human_size(row.size),
                human_age(row.age_seconds),
                (row.sha256 or "-")[:12],
                state(row),
                str(path),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in table)


@app.command()
def check(
    ctx: typer.Context,
    runtimes: list[str] = typer.Argument(
        None, help="Runtime names (default: every runtime).", autocompletion=complete_runtime
    ),
) -> None:
    """Status of each runtime × platform in build.platforms; exit 0 only when all are built and fresh."""
    opts = options(ctx)
    ws = opts.workspace()
    selected = [ws.runtime(n) for n in runtimes] if runtimes else ws.runtimes()
    rows = []
    for rt in selected:
        loaded = load_runtime_config(ws, rt)
        keys, note = configured_platforms(loaded)
        if note:
            opts.note(note)
        rows += [replace(artifact_status(ws, loaded, key), note=note or "") for key in keys]
    ok = all(row.fresh for row in rows)
    opts.emit({"ok": ok, "artifacts": [row.as_json() for row in rows]}, lambda: _check_text(rows, ws.root))
    if not ok:
        raise typer.Exit(1)


def _cleanup_text(plan: CleanupPlan, dry_run: bool) -> str:
    def show(path: Path) -> str:
        return str(path.relative_to(plan.workspace)) if path.is_relative_to(plan.workspace) else str(path)

    verb = "would remove" if dry_run else "removed"
    lines = [f"{verb}  {show(i.path)}  ({i.kind}, {human_size(i.size)})" for i in plan.items]
    lines += [f"kept  {show(k.path)}  ({k.reason})" for k in plan.kept]
    lines += [f"refused  {show(r.path)}  ({r.reason})" for r in plan.refused]
    lines.append(f"{'would free' if dry_run else 'freed'} {human_size(plan.total)}")
    return "\n".join(lines)


@app.command()
def cleanup(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Only list what would be removed."),
    cache: bool = typer.Option(False, "--cache", help="Also remove runenv's download and unpack cache."),
    remnants: bool = typer.Option(False, "--remnants", help="Also remove virtual-environment remnants."),
) -> None:
    """Remove build outputs (dist/, .runenv/ scratch); print what goes and the space freed."""
    opts = options(ctx)
    ws: Workspace = opts.workspace()
    try:
        cache_dir: Path | None = default_cache_dir()
    except UsageError:
        if cache:
            raise
        cache_dir = None  # a bad RUNENV_CACHE_DIR holds nothing of runenv's to clean
    plan = plan_cleanup(
        ws.root,
        cache_dir,
        remnants,
        scratch_root(ws.state_dir),
        whole_cache=cache,
        temp=Path(tempfile.gettempdir()),
    )
    if not dry_run:
        execute(plan)
    opts.emit(plan.as_json(dry_run), lambda: _cleanup_text(plan, dry_run))


@app.command()
def new(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="VERSION[-VARIANT], e.g. 3.13.5 or 3.12.10-slim."),
    release: str | None = typer.Option(None, "--release", help="python-build-standalone release tag."),
) -> None:
    """Scaffold python-<VERSION>[-<VARIANT>]/config.json with a minimal valid config."""
    opts = options(ctx)
    made = scaffold_runtime(opts.workspace(), name, release)
    if not made.catalogued:
        opts.warn(f"release {made.release} is not catalogued as shipping Python {made.runtime.split('-')[0]}")
        opts.info(f"next: runenv python pin {made.runtime}  (checks the release and pins its hashes)")
    data = {
        "runtime": made.runtime,
        "config": str(made.config_path),
        "release": made.release,
        "catalogued": made.catalogued,
        "schema": str(made.schema) if made.schema else None,
    }
    if made.schema:
        opts.info(f'wrote {made.schema} (the JSON Schema its "$schema" key points at, for editors)')
    opts.emit(data, f"created {made.config_path} (python-build-standalone release {made.release})")
