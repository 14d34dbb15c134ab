"""CLI command: `publish` (see runenv/publish/)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from runenv import progress, settings
from runenv.cli.app import Options, app, complete_platform, complete_runtime, options
from runenv.config import load_runtime_config
from runenv.errors import UsageError
from runenv.platforms import get_platform
from runenv.publish import PublishItem, PublishReport, not_built, open_target, plan_item, publish
from runenv.publish.artifacts import LocalArtifact, built_platforms
from runenv.publish.targets.base import Progress
from runenv.publish.targets.registry import choose_target
from runenv.workspace import Runtime

TARGET_HINT = "pass --to URL, set RUNENV_PUBLISH_TARGET, or set publish.target in the config"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _progress(opts: Options, target: str) -> Callable[[LocalArtifact], Progress]:
    """Per-item progress: a line as each upload starts (the bytes go to the running `upload` phase)."""

    def start(artifact: LocalArtifact) -> Progress:
        opts.info(f"uploading {artifact.filename} ({_megabytes(artifact.size)}) to {target}")
        return lambda _n: None

    return start


def _line(item: PublishItem, verb: str) -> str:
    name = item.artifact.filename if item.artifact else f"{item.runtime} {item.platform}"
    sha = f"  sha256 {item.artifact.sha256}" if item.artifact else ""
    return f"{verb:<18} {name}{sha}"


def _text(reports: list[PublishReport]) -> str:
    lines = []
    for report in reports:
        lines.append(f"target {report.target}")
        verb = "would upload" if report.dry_run else "uploaded"
        for item in report.of("upload", "replace"):
            if report.dry_run or item in report.uploaded:
                lines.append(_line(item, verb + (" (replace)" if item.action == "replace" else "")))
        lines += [_line(item, "already published") for item in report.of("skip")]
    return "\n".join(lines)


def _merged_json(reports: list[PublishReport]) -> dict[str, Any]:
    merged: dict[str, Any] = {"targets": [r.target for r in reports], "dryRun": any(r.dry_run for r in reports)}
    for report in reports:
        for key, rows in report.as_json().items():
            if isinstance(rows, list):
                merged.setdefault(key, []).extend({**row, "target": report.target} for row in rows)
    for key in ("uploaded", "skipped", "refused"):
        merged.setdefault(key, [])
    return merged


@app.command("publish")
def publish_cmd(
    ctx: typer.Context,
    runtimes: list[str] | None = typer.Argument(
        None, help="Runtimes to publish, e.g. 3.12.10.", autocompletion=complete_runtime
    ),
    all_runtimes: bool = typer.Option(False, "--all", help="Publish every runtime in the workspace."),
    platforms: list[str] | None = typer.Option(
        None,
        "--platform",
        "-p",
        help="Platform to publish (repeatable; default: every built one).",
        autocompletion=complete_platform,
    ),
    to: str | None = typer.Option(
        None, "--to", help="Target: directory, file://, http(s)://, s3://bucket/prefix, oci://host/repo."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be uploaded; change nothing."),
    force: bool = typer.Option(False, "--force", help="Replace artifacts published with other bytes."),
    insecure: bool = typer.Option(False, "--insecure", help="Plain HTTP to an OCI registry that is not loopback."),
    sources: list[Path] | None = typer.Option(
        None, "--from", help="Directory of built artifacts, e.g. a CI runner's dist/ (repeatable; default: dist/)."
    ),
) -> None:
    """Upload built runtime tarballs to a target and list them in its catalogue (index.json)."""
    opts = options(ctx)
    ws = opts.workspace()
    selected = ws.select(list(runtimes or []), all_runtimes)
    for directory in sources or []:
        if not directory.is_dir():
            raise UsageError(f"--from {directory}: not a directory")
    from_dirs = [d.resolve() for d in sources] if sources else None
    for key in platforms or []:
        get_platform(key)
    plans: dict[str, list[tuple[Runtime, list[str]]]] = {}
    timeout = 300.0
    s3_endpoint: str | None = None
    for rt in selected:
        loaded = load_runtime_config(ws, rt)
        url = choose_target(to, settings.current().publish_target or None, loaded.config.publish.target, ws.root)
        if url is None:
            raise UsageError(f"no publish target for runtime {rt.name}", hint=TARGET_HINT)
        configured: list[str] = list(loaded.config.build.platforms)
        wanted = list(platforms) if platforms else built_platforms(ws, rt, configured, from_dirs)
        plans.setdefault(url, []).append((rt, wanted or configured))
        timeout = float(loaded.config.build.timeout)
        s3_endpoint = loaded.config.publish.s3_endpoint or s3_endpoint
    reports = []
    for url, entries in plans.items():
        target = open_target(url, timeout=timeout, insecure=insecure, s3_endpoint=s3_endpoint)
        try:
            items = []
            for rt, wanted in entries:
                if not platforms and not built_platforms(ws, rt, wanted, from_dirs):
                    items.append(not_built(rt, wanted))
                    continue
                items += [plan_item(ws, rt, key, target, force, from_dirs) for key in wanted]
            with opts.reporter() as shown, progress.task(f"publish to {target.display}", shown):
                reports.append(publish(target, items, dry_run=dry_run, progress=_progress(opts, target.display)))
        finally:
            target.close()
    refused = [item for report in reports for item in report.refused]
    if not opts.json:
        for item in refused:
            typer.echo(f"error: refused {item.runtime} {item.platform}: {item.reason}", err=True)
            if item.hint:
                typer.echo(f"  hint: {item.hint}", err=True)
        if refused and any(r.of("upload", "replace") for r in reports) and not dry_run:
            typer.echo("nothing was uploaded because of the refusals above", err=True)
    opts.emit(_merged_json(reports), lambda: _text(reports))
    if refused:
        raise typer.Exit(1)
