"""Help text polish applied to every command once: readable metavars, examples, platform keys, global options."""

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
    "sources": "DIR",
    "install": "SPEC",
    "name": "VERSION[-VARIANT]",
    "version": "VERSION",
}
PLATFORMS_EPILOG = "Platform keys: " + ", ".join(PLATFORM_KEYS) + "."
GLOBALS_EPILOG = (
    "Global options (before or after the command): -w/--workspace DIR, -o/--output text|json, "
    "-v/--verbose (-vv: debug), -q/--quiet, --no-progress, -V/--version."
)
# Command path (below `runenv`) → example command lines shown at the end of its help.
EXAMPLES = {
    "build": [
        "runenv build 3.12.10",
        "runenv build 3.12.10 -p windows-x64 -p macosx-aarch64",
        "runenv build --all --all-platforms --jobs 4",
        "runenv build 3.12.10 --locked --out /srv/artifacts -o json",
    ],
    "lock": [
        "runenv lock 3.12.10",
        "runenv lock 3.12.10 --all-platforms",
        "runenv lock 3.12.10 -p windows-x64 -o json",
    ],
    "verify": [
        "runenv verify 3.12.10",
        "runenv verify 3.12.10 -p windows-x64 -o json",
        "runenv verify 3.12.10 --all-platforms",
        "runenv verify 3.12.10 --recheck",
    ],
    "run": [
        "runenv run 3.12.10 -- python -c 'import sys; print(sys.prefix)'",
        "runenv run 3.12.10 -- pytest -q tests/",
    ],
    "activate": ['eval "$(runenv activate 3.12.10)"'],
    "completion": [
        'eval "$(runenv completion bash)"',
        "runenv completion zsh > ~/.zfunc/_runenv",
        "runenv completion fish > ~/.config/fish/completions/runenv.fish",
    ],
    "check": ["runenv check", "runenv check 3.12.10 -o json"],
    "cleanup": ["runenv cleanup --dry-run", "runenv cleanup --cache", "runenv cleanup --remnants -o json"],
    "new": ["runenv new 3.13.5", "runenv new 3.12.10-slim --release 20250517"],
    "publish": [
        "runenv publish 3.12.10 --to /srv/runtimes",
        "runenv publish --all --to oci://registry.example:5000/runenv/python --dry-run",
        "runenv publish --all --from runner-a/dist --from runner-b/dist --to s3://bucket/runtimes",
    ],
    "matrix": ["runenv matrix", "runenv matrix 3.12.10 -o json"],
    "versions": ["runenv versions", "runenv versions -o json"],
    "ci github": ["runenv ci github", "runenv ci github --force --install 'runenv[s3]==1.0'"],
    "config show": ["runenv config show 3.12.10", "runenv config show 3.12.10 -p linux-aarch64 -o json"],
    "config validate": ["runenv config validate", "runenv config validate -o json"],
    "config schema": ["runenv config schema > schema/runenv-config.schema.json"],
    "python list": ["runenv python list", "runenv python list 3.12", "runenv python list 3.12.10 -o json"],
    "python pin": ["runenv python pin 3.12.10"],
}


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


def _without_range(param: Any) -> None:
    """No range notes (`x>=1`) after an option's help: the help text says what the value is."""
    param._get_number_range_help_str = lambda: ""  # typer's renderer asks the option for it


def _epilog(command: Any, path: str) -> str:
    """Examples, the platform keys (for commands that take one) and the global options, each kept as written."""
    parts = []
    if path in EXAMPLES:
        parts.append("Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in EXAMPLES[path]))
    if any(p.name in ("platform", "platforms") for p in command.params):
        parts.append(PLATFORMS_EPILOG)
    parts.append(GLOBALS_EPILOG)
    return "\n\n".join(parts)


def polish(command: Any, path: str = "") -> Any:
    """Give each parameter of `command` and its subcommands a readable metavar, and each subcommand an epilog
    with examples, platform keys and the global options."""
    for param in command.params:
        flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
        if param.metavar is None and not flag and param.name != "help":
            param.metavar = _metavar(param)
        if param.param_type_name == "argument":
            _plain_argument(param)
        elif hasattr(param, "_get_number_range_help_str"):
            _without_range(param)
    if path and not command.epilog:
        command.epilog = _epilog(command, path)
    for name, sub in getattr(command, "commands", {}).items():
        if sub.short_help is None and sub.help:
            sub.short_help = sub.help.strip().split("\n\n")[0].replace("\n", " ")  # whole, never cut at "..."
        polish(sub, f"{path} {name}".strip())
    return command
