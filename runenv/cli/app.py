"""The typer app, global options, and rendering of results as text or JSON."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from runenv import __version__, progress
from runenv.errors import RunenvError, UsageError
from runenv.platforms import PLATFORM_KEYS, PlatformKey, get_platform, host_platform_key
from runenv.redact import redact
from runenv.workspace import Workspace, find_workspace

if TYPE_CHECKING:
    from runenv.config import LoadedConfig


COMPLETE_VAR = "_RUNENV_COMPLETE"  # what click reads to answer a completion request


def complete_platform(incomplete: str) -> list[str]:
    """Shell completion of `--platform`: the platform keys."""
    return [key for key in PLATFORM_KEYS if key.startswith(incomplete)]


def complete_runtime(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of runtime names: those of the workspace (`-w`, or found from the current directory)."""
    try:
        workspace = find_workspace(explicit=ctx.find_root().params.get("workspace"))
        return [rt.name for rt in workspace.runtimes() if rt.name.startswith(incomplete)]
    except (RunenvError, OSError):
        return []


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


@dataclass
class Options:
    """Global options, shared by every command through the typer context."""

    workspace_dir: Path | None
    output: OutputFormat
    verbosity: int
    no_progress: bool = False

    def reporter(self) -> contextlib.AbstractContextManager[progress.Reporter]:
        """Where this command's progress goes: a live area on a terminal, phase lines elsewhere, none with -q."""
        from runenv.cli import progress_ui  # rich's live display: not loaded by commands that show no progress

        return progress_ui.reporter(self.verbosity, self.no_progress)

    def workspace(self) -> Workspace:
        return find_workspace(explicit=self.workspace_dir)

    @property
    def json(self) -> bool:
        return self.output is OutputFormat.json

    @property
    def color(self) -> bool:
        return sys.stdout.isatty() and "NO_COLOR" not in os.environ

    def emit(self, data: Any, text: Callable[[], str] | str | None = None) -> None:
        """Print `data` as JSON, or its text rendering."""
        if self.json:
            typer.echo(redact(json.dumps(data, indent=2, ensure_ascii=False)))
        elif text is not None:
            rendered = text() if callable(text) else text
            if rendered:
                typer.echo(redact(rendered))

    def info(self, message: str) -> None:
        """A progress line on stderr (hidden with -q)."""
        if self.verbosity >= 0:
            typer.echo(redact(message), err=True)

    def debug(self, message: str) -> None:
        if self.verbosity > 0:
            typer.echo(redact(message), err=True)

    def note(self, message: str) -> None:
        """An informational line on stderr (hidden with -q)."""
        self.info(f"note: {message}")

    def warn(self, message: str) -> None:
        typer.echo(redact(f"warning: {message}"), err=True)


app = typer.Typer(
    name="runenv",
    help="Build relocatable Python runtime tarballs from one declarative workspace.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"runenv {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    workspace: Path | None = typer.Option(
        None, "--workspace", "-w", help="Workspace root (default: walk up from cwd to shared-config.json)."
    ),
    output: OutputFormat = typer.Option(OutputFormat.text, "--output", "-o", help="text or json."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, show_default=False, help="More output (-vv: debug)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and results."),
    no_progress: bool = typer.Option(
        False, "--no-progress", help="No live progress display, one line per step (also RUNENV_NO_PROGRESS=1)."
    ),
    _version: bool = typer.Option(
        False, "--version", "-V", is_eager=True, callback=_print_version, help="Show runenv's version and exit."
    ),
) -> None:
    ctx.obj = Options(workspace, output, -1 if quiet else verbose, no_progress)


def options(ctx: typer.Context) -> Options:
    """The global options of the running command."""
    found = ctx.find_root().obj
    if not isinstance(found, Options):
        raise TypeError("the root command did not set runenv's global options")
    return found


def target_platforms(
    loaded: LoadedConfig, platforms: list[str], all_platforms: bool, note: Callable[[str], None] | None = None
) -> list[PlatformKey]:
    """Platforms a command acts on: --platform keys, --all-platforms (build.platforms), else the host."""
    from runenv.plan import configured_platforms  # the plan's imports are not every command's start-up

    if all_platforms and platforms:
        raise UsageError("give --platform or --all-platforms, not both")
    if all_platforms:
        keys, why = configured_platforms(loaded)
        if why and note:
            note(why)
        return keys
    if platforms:
        return [get_platform(p).key for p in dict.fromkeys(platforms)]
    host = host_platform_key()
    if host is None:
        raise UsageError("this host is not one of runenv's platforms", hint="pass --platform KEY")
    return [host]
