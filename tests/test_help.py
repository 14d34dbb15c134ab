"""Every command's --help reads well (metavars, examples, platform keys, global options); usage errors are one line."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
import typer

from runenv import __version__
from runenv.cli import COMMAND_MODULES, register_commands
from runenv.cli.app import app
from runenv.platforms import PLATFORM_KEYS
from tests.conftest import REPO


def command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path] if path else []
    for name, sub in getattr(command, "commands", {}).items():
        paths += command_paths(sub, (*path, name))
    return paths


register_commands([])  # every command, as `runenv --help` sees them
PATHS = command_paths(typer.main.get_command(app))
TYPE_LABELS = re.compile(r"<(list|int|float|text|path|integer|string|boolean|choice)[^>]*>", re.I)
OPTION_LINE = re.compile(r"^\s+(?:-\w, )?--[\w-]+ (\S+)")


def test_the_walk_finds_every_command(run_cli) -> None:
    names = {" ".join(p) for p in PATHS}
    assert {"build", "lock", "verify", "check", "cleanup", "publish", "config show", "python pin", "ci github"} <= names
    # Each command is found by the module that registers it (a command runs with only its own module imported).
    assert {p[0] for p in PATHS} == set(COMMAND_MODULES)
    top = run_cli("--help").stdout
    assert "-V, --version" in top and "-o, --output text|json" in top
    assert "..." not in top.split("Commands:", 1)[1]  # every summary whole


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_every_help_is_readable(path: tuple[str, ...], run_cli) -> None:
    result = run_cli(*path, "--help")
    assert result.code == 0, result.stderr
    text = result.stdout
    assert not TYPE_LABELS.search(text), text  # typer's <list[str]>, <int range>
    assert not re.search(r"\{[a-z_]+\}", text), text  # typer's {runtime}
    assert "[default: 0]" not in text and "x>=" not in text, text
    assert "Global options" in text and "-o/--output text|json" in text
    for line in text.splitlines():
        option = OPTION_LINE.match(line)
        if option and not option.group(1)[0].isupper():  # a value's metavar: KEY, N, DIR, RUNTIME…, text|json
            assert option.group(1) == "text|json", line
    if re.search(r"^\s+(-p, )?--platform KEY", text, re.M):  # takes a platform: lists the keys
        assert "Platform keys: " + ", ".join(PLATFORM_KEYS[:3]) in " ".join(text.split()), text
    commands = text.split("Commands:", 1)
    if len(commands) == 2:  # a group: each summary whole, never cut at "..."
        summaries = commands[1].split("\n\n")[0]
        assert "..." not in summaries, summaries
    else:
        examples = text.split("Examples:", 1)
        assert len(examples) == 2, f"no examples in `runenv {' '.join(path)} --help`"
        lines = [line.strip() for line in examples[1].strip().split("\n\n")[0].splitlines()]
        assert lines and all("runenv " + " ".join(path) in line for line in lines), lines


def test_arguments_show_readable_metavars(run_cli) -> None:
    assert "Usage: runenv build [OPTIONS] [RUNTIME…]" in run_cli("build", "--help").stdout
    assert "Usage: runenv new [OPTIONS] VERSION[-VARIANT]" in run_cli("new", "--help").stdout
    assert "--from DIR" in run_cli("publish", "--help").stdout
    assert "-j, --jobs N" in run_cli("build", "--help").stdout


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["build", "--bogus"], "error: no such option: --bogus"),
        (["lock"], "error: missing argument 'RUNTIME'"),
        (
            ["--output", "yaml", "versions"],
            "error: invalid value for '--output' / '-o': 'yaml' is not one of 'text', 'json'",
        ),
        (
            ["build", "-j", "0", "3.12.10"],
            "error: invalid value for '--jobs' / '-j': must be greater than or equal to 1",
        ),
        (["frobnicate"], "error: no such command 'frobnicate'"),
    ],
)
def test_usage_errors_are_runenv_s_one_line_form(args: list[str], error: str, run_cli) -> None:
    result = run_cli(*args)
    assert result.code == 2
    lines = result.stderr.rstrip("\n").splitlines()
    assert len(lines) == 2 and lines[0].startswith(error), result.stderr
    assert re.fullmatch(r"  hint: see `runenv( \w+)* --help`", lines[1]), lines[1]
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert "pydantic" not in result.stderr.lower() and "Input should" not in result.stderr


def test_version(run_cli) -> None:
    for flag in ("--version", "-V"):
        result = run_cli(flag)
        assert result.code == 0 and result.stdout == f"runenv {__version__}\n"


def _command_modules_after(args: list[str]) -> tuple[str, list[str]]:
    """The exit code of `runenv ARGS` in a fresh interpreter, and the command modules it imported."""
    probe = (
        "import sys; from runenv.cli import main\n"
        f"try: main({args!r})\n"
        "except SystemExit as exc: code = exc.code\n"
        "print(code, ' '.join(sorted(m for m in sys.modules if m.startswith('runenv.cli.commands.'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    code, _, modules = out.stdout.splitlines()[-1].partition(" ")
    return code, modules.split()


@pytest.mark.parametrize("name", sorted(COMMAND_MODULES))
def test_each_command_runs_with_only_its_own_module_imported(name: str) -> None:
    """`runenv NAME --help` imports NAME's module and no other command module."""
    assert _command_modules_after([name, "--help"]) == ("0", [f"runenv.cli.commands.{COMMAND_MODULES[name]}"])


def test_version_imports_no_command_and_help_imports_every_one() -> None:
    assert _command_modules_after(["-q", "--version"]) == ("0", [])
    code, modules = _command_modules_after(["--help"])
    assert code == "0" and modules == sorted({f"runenv.cli.commands.{m}" for m in COMMAND_MODULES.values()})


@pytest.mark.parametrize("args", [[], ["config"], ["python"], ["ci"]])
def test_a_bare_group_shows_its_help_not_an_error_line(args: list[str], run_cli) -> None:
    """`runenv` or `runenv config` alone: the group's help (its commands listed), exit 2 as click does."""
    result = run_cli(*args)
    assert result.code == 2
    assert result.stderr.startswith(f"Usage: runenv{''.join(' ' + a for a in args)} ")
    assert "error:" not in result.stderr and "Commands" in result.stderr


def test_an_unknown_option_suggests_only_close_names(run_cli) -> None:
    typo = run_cli("build", "--platfrom", "linux-x64", "3.12.10")
    assert typo.code == 2 and typo.stderr.startswith("error: no such option: --platfrom (did you mean --platform")
    unknown = run_cli("build", "--bogus", "3.12.10")
    assert unknown.code == 2 and unknown.stderr.splitlines()[0] == "error: no such option: --bogus"
