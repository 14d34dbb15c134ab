"""CLI commands: `run` and `activate`, which use a built runtime; kept apart so that they start fast."""

from __future__ import annotations

import subprocess
from pathlib import Path

import typer

from runenv.artifact_names import built_tarballs, require_artifact
from runenv.cache import default_cache_dir
from runenv.cli.app import Options, app, complete_platform, complete_runtime, options
from runenv.errors import UsageError
from runenv.ops.runner import activation_lines, host_runnable_platform, resolve_command, runtime_env
from runenv.ops.unpack import unpack_cached
from runenv.platforms import RuntimeLayout
from runenv.workspace import Runtime, Workspace

PLATFORM_OPTION = typer.Option(
    None, "--platform", "-p", help="Platform key (default: this machine's).", autocompletion=complete_platform
)


def _unpacked(opts: Options, runtime: str, platform_key: str | None, verb: str) -> RuntimeLayout:
    """The runtime unpacked in the cache, for this host's platform (or `platform_key`)."""
    ws = opts.workspace()
    found = ws.runtime(runtime)
    platform = host_runnable_platform(platform_key, verb)
    tarball = _built_tarball(ws, found, platform.key)
    opts.debug(f"using {tarball}")
    return RuntimeLayout(unpack_cached(tarball, default_cache_dir()), platform, found.version)


def _built_tarball(ws: Workspace, runtime: Runtime, platform: str) -> Path:
    """The runtime's tarball in dist/. The config (a good part of a start-up) is read only when it decides:
    both compressions built, or none (the error then says how to build it)."""
    built = built_tarballs(ws.dist_dir, runtime.artifact_stem(platform))
    if len(built) == 1:
        return built[0]
    from runenv.config import load_runtime_config

    return require_artifact(ws, load_runtime_config(ws, runtime), platform)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    runtime: str = typer.Argument(..., help="Runtime name, e.g. 3.12.10.", autocompletion=complete_runtime),
    command: list[str] = typer.Argument(None, help="Command after `--`: python …, or a console script."),
    platform: str | None = PLATFORM_OPTION,
) -> None:
    """Run a command with a built runtime: `runenv run 3.12.10 -- python script.py`."""
    opts = options(ctx)
    if not command:
        raise UsageError("no command given", hint=f"runenv run {runtime} -- python -c 'print(1)'")
    layout = _unpacked(opts, runtime, platform, "run")
    env = runtime_env(layout)
    argv = resolve_command(layout, list(command), env)
    opts.debug(f"running {argv}")
    code = subprocess.run(argv, env=env).returncode
    raise typer.Exit(code if code >= 0 else 128 - code)


@app.command()
def activate(
    ctx: typer.Context,
    runtime: str = typer.Argument(..., help="Runtime name, e.g. 3.12.10.", autocompletion=complete_runtime),
) -> None:
    """Print shell lines that put a built runtime first on PATH: eval "$(runenv activate 3.12.10)"."""
    opts = options(ctx)
    layout = _unpacked(opts, runtime, None, "activate")
    lines = activation_lines(layout, runtime.removeprefix("python-"))
    opts.emit({"runtime": runtime, "prefix": str(layout.prefix), "lines": lines}, "\n".join(lines))
