"""CLI commands: `versions`, `config show|validate|schema`."""

from __future__ import annotations

import json
from typing import Any

import typer

from runenv.build.pipeline import check_interpreter_config
from runenv.build.verify.allowlist import checks_files, read_checks_file
from runenv.cli.app import app, complete_platform, complete_runtime, options
from runenv.config import config_schema, load_runtime_config
from runenv.errors import ConfigError
from runenv.plan import RuntimePlan, build_plan, configured_platforms
from runenv.platforms import PLATFORM_KEYS, get_platform
from runenv.redact import redact

config_app = typer.Typer(help="Show, validate and describe configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@app.command()
def versions(ctx: typer.Context) -> None:
    """List the runtimes in the workspace."""
    opts = options(ctx)
    ws = opts.workspace()
    rows = [
        {"name": rt.name, "python": rt.version, "variant": rt.variant, "directory": str(rt.directory)}
        for rt in ws.runtimes()
    ]
    for stray in ws.stray_dirs():
        opts.warn(stray.warning())
    opts.emit(rows, lambda: "\n".join(f"{r['name']:<20} Python {r['python']}" for r in rows) or "no runtimes")


def _plan_text(plan: RuntimePlan) -> str:
    lines = [f"runtime {plan.runtime} (Python {plan.python_version}) on {plan.platform}"]
    indexes = (["(machine's configured index)"] if plan.uses_machine_index else []) + plan.as_json()["registries"]
    lines.append("registries: " + ", ".join(indexes) + f" ({plan.index_strategy})")
    shown = [p.as_json()["requirement"] for p in plan.packages]  # credentials redacted
    width = max((len(r) for r in shown), default=10)
    for p, requirement in zip(plan.packages, shown, strict=True):
        extra = f"fallback {p.fallback}" if p.fallback else ""
        if p.reason:
            extra = f"{extra}; {p.reason}" if extra else p.reason
        lines.append(f"  {requirement:<{width}}  {p.action:<11} {extra}".rstrip())
    for name, reason in sorted(plan.excluded.items()):
        if plan.package(name) is None:
            lines.append(f"  excluded wherever it appears: {name}" + (f" ({reason})" if reason else ""))
    for name, reason in sorted(plan.skip_rules.items()):
        if plan.package(name) is None:
            lines.append(
                f"  skip rule, installed only if a kept package needs it: {name}" + (f" ({reason})" if reason else "")
            )
    return "\n".join(lines)


@config_app.command("show")
def show(
    ctx: typer.Context,
    runtime: str = typer.Argument(
        ..., help="Runtime name, e.g. 3.12.10 or 3.12.10-slim.", autocompletion=complete_runtime
    ),
    platform: str | None = typer.Option(
        None, "--platform", "-p", help="Show the plan for this platform.", autocompletion=complete_platform
    ),
) -> None:
    """Show a runtime's merged config, or with --platform its plan."""
    opts = options(ctx)
    ws = opts.workspace()
    loaded = load_runtime_config(ws, ws.runtime(runtime))
    if platform is None:
        data = loaded.as_json()
        opts.emit(data, lambda: json.dumps(data, indent=2))
        return
    get_platform(platform)
    plan = build_plan(loaded, platform)
    opts.emit(plan.as_json(), lambda: _plan_text(plan))


@config_app.command("validate")
def validate(ctx: typer.Context) -> None:
    """Validate every runtime on every platform; exit 0 when all are valid."""
    opts = options(ctx)
    ws = opts.workspace()
    results: list[dict[str, Any]] = []
    failures = []
    stray = ws.stray_dirs()
    for rt in ws.runtimes():
        try:
            loaded = load_runtime_config(ws, rt)
            check_interpreter_config(loaded)
            keys, note = configured_platforms(loaded)
            local = loaded.config.python.source == "local"  # exists for the host only, whatever build.platforms says
            keys = keys if note or local else list(PLATFORM_KEYS)
            for key in keys:
                build_plan(loaded, key)
            results.append({"runtime": rt.name, "valid": True, "platforms": keys})
            if note:
                opts.note(note)
        except ConfigError as exc:
            results.append({"runtime": rt.name, "valid": False, "error": exc.message})
            failures.append(exc)
    for path in checks_files(ws.root):
        try:
            if path.stem not in PLATFORM_KEYS:
                raise ConfigError(
                    f"{path}: not a platform key", hint=f"name it after one of {', '.join(PLATFORM_KEYS)}"
                )
            read_checks_file(path)
        except ConfigError as exc:
            results.append({"checks": str(path), "valid": False, "error": exc.message})
            failures.append(exc)
    if opts.json:
        opts.emit({"valid": not failures, "runtimes": results, "ignored": [d.as_json() for d in stray]})
    else:
        for item in stray:
            opts.warn(item.warning())
        for failure in failures:
            typer.echo(redact(failure.render()), err=True)
        runtimes = [r for r in results if "runtime" in r]
        everywhere = [r["runtime"] for r in runtimes if r["valid"] and len(r["platforms"]) == len(PLATFORM_KEYS)]
        if everywhere:
            opts.emit(None, f"valid on all {len(PLATFORM_KEYS)} platforms: {', '.join(everywhere)}")
        for r in runtimes:
            if r["valid"] and len(r["platforms"]) < len(PLATFORM_KEYS):
                opts.emit(None, f"valid on {', '.join(r['platforms']) or 'no platform'}: {r['runtime']}")
        if not runtimes:
            opts.warn(f"no runtimes in workspace {ws.root} (directories named python-X.Y.Z with a config.json)")
    if failures:
        raise typer.Exit(ConfigError.exit_code)


@config_app.command("schema")
def schema(ctx: typer.Context) -> None:
    """Print the JSON Schema of a config file."""
    typer.echo(json.dumps(config_schema(), indent=2))
