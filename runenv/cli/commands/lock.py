"""CLI command: `lock` — resolve a runtime's packages into pylock.<platform>.toml files."""

from __future__ import annotations

from typing import Any

import typer

from runenv import progress
from runenv.build.packages.lock import LockedPackage, lock_runtime
from runenv.cli.app import app, complete_platform, complete_runtime, options, target_platforms
from runenv.config import load_runtime_config
from runenv.plan import build_plan


def _package_json(p: LockedPackage) -> dict[str, str]:
    out = {"name": p.name, "version": p.version, "kind": p.kind, "sha256": p.sha256}
    if p.vcs is not None:
        out.update(url=p.vcs.url, commit=p.vcs.commit)
    return out


@app.command()
def lock(
    ctx: typer.Context,
    runtime: str = typer.Argument(
        ..., help="Runtime name, e.g. 3.12.10 or 3.12.10-slim.", autocompletion=complete_runtime
    ),
    platform: list[str] | None = typer.Option(
        None, "--platform", "-p", help="Target platform (repeatable).", autocompletion=complete_platform
    ),
    all_platforms: bool = typer.Option(False, "--all-platforms", help="Every platform in build.platforms."),
) -> None:
    """Resolve a runtime's packages for each platform into python-<runtime>/pylock.<platform>.toml."""
    opts = options(ctx)
    ws = opts.workspace()
    loaded = load_runtime_config(ws, ws.runtime(runtime))
    keys = target_platforms(loaded, platform or [], all_platforms, opts.note)
    results: list[dict[str, Any]] = []
    with opts.reporter() as shown:
        for key in keys:
            plan = build_plan(loaded, key)
            with progress.task(f"{loaded.runtime.name} {key}", shown), progress.phase("lock") as step:
                done = lock_runtime(loaded, plan, warn=opts.warn).lock
                step.detail = f"{len(done.packages)} packages"
            results.append(
                {
                    "runtime": loaded.runtime.name,
                    "platform": key,
                    "path": str(done.path),
                    "packages": [_package_json(p) for p in done.packages],
                    "skipped": [s.as_json() for s in done.skipped],
                    "kept": [
                        {"name": k.name, "reason": k.reason, "platform": k.platform, "requiredBy": list(k.required_by)}
                        for k in done.kept
                    ],
                }
            )

    def text() -> str:
        lines = []
        for r in results:
            lines.append(f"{r['runtime']} {r['platform']}: {len(r['packages'])} packages -> {r['path']}")
            lines += [f"  skipped {s['name']}: {s['reason']}" for s in r["skipped"]]
        return "\n".join(lines)

    opts.emit(results, text)
