"""Command-line interface: parses arguments, calls the stages, renders results; no logic."""

from __future__ import annotations

import difflib
import importlib
import os
import re
import signal
import sys
import threading
from typing import Any, NoReturn

import typer

from runenv import settings
from runenv.cli.app import COMPLETE_VAR, app
from runenv.cli.help import polish
from runenv.errors import RunenvError
from runenv.redact import redact

# The module that registers each command; all of them, in this order, for help and completion. A command
# imports only its own module, so that `runenv run` or `--version` does not pay for the build pipeline.
COMMAND_MODULES = {
    "build": "build",
    "matrix": "ci",
    "ci": "ci",
    "versions": "config",
    "config": "config",
    "lock": "lock",
    "verify": "ops",
    "check": "ops",
    "cleanup": "ops",
    "new": "ops",
    "run": "run",
    "activate": "run",
    "publish": "publish",
    "python": "python",
    "completion": "shell",
}
_GLOBAL_WITH_VALUE = {"--workspace", "-w", "--output", "-o"}
_GLOBAL_FLAGS = {"--quiet", "-q", "--verbose", "--no-progress"}


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


class _Signals:
    """SIGTERM handled like Ctrl-C: it raises KeyboardInterrupt in the main thread, so every temp file and
    directory is removed on the way out, and the exit code says which signal it was (128 + number)."""

    def __init__(self) -> None:
        self.received = signal.SIGINT
        self._previous: object = None

    def _terminate(self, signum: int, _frame: object) -> None:
        self.received = signal.Signals(signum)
        signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM ends the process at once
        raise KeyboardInterrupt

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._terminate)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)  # type: ignore[arg-type]

    def interrupted(self) -> NoReturn:
        print("terminated" if self.received == signal.SIGTERM else "interrupted", file=sys.stderr)
        sys.exit(128 + self.received)


def register_commands(args: list[str]) -> None:
    """Import the module of the command `args` name (global options first, as hoisted), or every command
    module when they name none (help, completion); none for `--version`."""
    front = list(args)
    while front and front[0].startswith("-") and front[0] != "--":
        option = front.pop(0)
        if option in ("--version", "-V"):
            return
        if option in _GLOBAL_WITH_VALUE and front:
            front.pop(0)
    name = front[0] if front and not os.environ.get(COMPLETE_VAR) else None
    wanted = [COMMAND_MODULES[name]] if name in COMMAND_MODULES else COMMAND_MODULES.values()
    for module in dict.fromkeys(wanted):
        importlib.import_module(f"runenv.cli.commands.{module}")


def _usage_error(exc: Any) -> str:
    """click's usage errors in runenv's own form: `error: …` and a hint naming the command's help."""
    message = exc.format_message().replace("Value error, ", "").replace("Input should be ", "must be ")
    if type(exc).__name__ == "NoSuchOption":  # click suggests loosely (`--bogus`: --jobs, --out); only close ones
        close = difflib.get_close_matches(exc.option_name, list(exc.possibilities or ()), n=2, cutoff=0.7)
        message = f"no such option: {exc.option_name}" + (f" (did you mean {' or '.join(close)}?)" if close else "")
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "runenv"
    return f"error: {message[:1].lower()}{message[1:]}\n  hint: see `{command} --help`"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; runenv errors become one line on stderr and their exit code."""
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    register_commands(args)
    with _Signals() as signals, settings.use(settings.Settings.from_environ()):  # the environment, read once
        try:
            code = polish(typer.main.get_command(app)).main(args=args, prog_name="runenv", standalone_mode=False)
        except RunenvError as exc:
            if signals.received == signal.SIGTERM:  # a step failed because the build was being stopped
                signals.interrupted()
            print(redact(exc.render()), file=sys.stderr)
            sys.exit(exc.exit_code)
        except (KeyboardInterrupt, typer.Abort):
            signals.interrupted()
        except Exception as exc:
            # click's usage errors (typer vendors its own click, so they are known by their shape).
            exit_code = getattr(exc, "exit_code", None)
            if not (hasattr(exc, "format_message") and isinstance(exit_code, int)):
                raise
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:  # `runenv`, `runenv config`: the help
                print(ctx.get_help(), file=sys.stderr)
            else:
                print(_usage_error(exc), file=sys.stderr)
            sys.exit(exit_code)
        if code == 130:  # typer turns Ctrl-C inside a command into this return value
            signals.interrupted()
    sys.exit(code if isinstance(code, int) else 0)
