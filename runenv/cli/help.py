"""Help text polish applied to every command once: readable metavars and the platform keys."""

from __future__ import annotations

from typing import Any

from runenv.platforms import PLATFORM_KEYS

# Parameter name → what its value is; anything not listed shows its name in capitals.
METAVARS = {
    "runtimes": "RUNTIME",
    "runtime": "RUNTIME",
    "platform": "KEY",
    "platforms": "KEY",
    "out": "DIR",
    "workspace": "DIR",
    "from_dirs": "DIR",
    "output": "text|json",
    "jobs": "N",
    "to": "TARGET",
    "command": "COMMAND",
    "release": "TAG",
}
PLATFORMS_EPILOG = "Platform keys: " + ", ".join(PLATFORM_KEYS) + "."


def _metavar(param: Any) -> str:
    name = METAVARS.get(param.name, param.name.upper().replace("_", "-"))
    many = param.nargs == -1 or getattr(param, "multiple", False)
    return f"{name}…" if many and param.param_type_name == "argument" else name


def _plain_argument(param: Any) -> None:
    """Arguments show their metavar alone (`RUNTIME…`), not typer's `{runtime}` or `<list[str]>`."""
    usage = param.metavar if param.required else f"[{param.metavar}]"
    # typer's help renderer asks the parameter itself; older typers without these hooks ignore them.
    param.display_type_rich = lambda ctx=None: None
    param._usage_display_name = lambda: usage
    param._rich_display_name = lambda: param.metavar


def polish(command: Any) -> Any:
    """Give each parameter of `command` and its subcommands a readable metavar; commands that take a
    platform list the platform keys."""
    for param in command.params:
        flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
        if param.metavar is None and not flag and param.name != "help":
            param.metavar = _metavar(param)
        if param.param_type_name == "argument":
            _plain_argument(param)
    if any(p.name in ("platform", "platforms") for p in command.params) and not command.epilog:
        command.epilog = PLATFORMS_EPILOG
    for sub in getattr(command, "commands", {}).values():
        if sub.short_help is None and sub.help:
            sub.short_help = sub.help.strip().split("\n\n")[0].replace("\n", " ")  # whole, never cut at "..."
        polish(sub)
    return command
