"""Command-line interface: parses arguments, calls the stages, renders results; no logic."""

from __future__ import annotations

import re
import sys
from typing import Any

import typer

from runenv.cli import build_cmds, config_cmds, lock_cmds, ops_cmds, publish_cmds, python_cmds  # noqa: F401  (register commands)
from runenv.cli.app import app
from runenv.cli.help import polish
from runenv.errors import RunenvError

_GLOBAL_WITH_VALUE = {"--workspace", "-w", "--output", "-o"}
_GLOBAL_FLAGS = {"--quiet", "-q", "--verbose"}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move global options given after the command name to the front (`runenv versions --output json`).

    Everything after `--` belongs to the command being run and is left alone.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name = arg.split("=", 1)[0]
        if name in _GLOBAL_WITH_VALUE:
            front.append(arg)
            if "=" not in arg and i + 1 < len(argv):
                front.append(argv[i + 1])
                i += 1
        elif arg in _GLOBAL_FLAGS or re.fullmatch(r"-v+", arg):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _usage_error(exc: Any) -> str:
    """click's usage errors in runenv's own form: `error: …` and a hint naming the command's help."""
    message = exc.format_message().replace("Value error, ", "")
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "runenv"
    return f"error: {message[:1].lower()}{message[1:]}\n  hint: see `{command} --help`"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; runenv errors become one line on stderr and their exit code."""
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    try:
        code = polish(typer.main.get_command(app)).main(args=args, prog_name="runenv", standalone_mode=False)
    except RunenvError as exc:
        print(exc.render(), file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        # click's usage errors (typer vendors its own click, so they are known by their shape).
        if not (hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)):
            raise
        print(_usage_error(exc), file=sys.stderr)
        sys.exit(exc.exit_code)
    if code == 130:  # typer turns Ctrl-C inside a command into this return value
        print("interrupted", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)
