"""The CLI's edge: --version, and usage errors in runenv's own one-line form."""

from __future__ import annotations

import pytest

import runenv
from tests.conftest import run_runenv


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_package_version(flag, run_cli):
    result = run_cli(flag)
    assert result.code == 0
    assert result.stdout.strip() == f"runenv {runenv.__version__}"


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["build", "--bogus"], "error: no such option: --bogus", "runenv build --help"),
        (["nosuch"], "error: no such command 'nosuch'", "runenv --help"),
        (["config", "show"], "error: missing argument 'RUNTIME'", "runenv config show --help"),
        (
            ["-o", "yaml", "versions"],
            "error: invalid value for '--output' / '-o': 'yaml' is not one of",
            "runenv --help",
        ),
    ],
)
def test_usage_errors_are_one_error_line_and_a_hint(args, message, hint, make_workspace):
    ws = make_workspace()
    result = run_runenv(*args, cwd=ws)
    assert result.code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(message), result.stderr
    assert lines[1:] == [f"  hint: see `{hint}`"]
    assert "Usage:" not in result.stderr and "Traceback" not in result.stderr


def _help(run_cli, *command: str) -> str:
    result = run_cli(*command, "--help")
    assert result.code == 0, result.stderr
    return result.stdout


def test_help_shows_readable_metavars_and_platform_keys(run_cli):
    build = _help(run_cli, "build")
    assert "Usage: runenv build [OPTIONS] [RUNTIME…]" in build
    assert "-p, --platform KEY" in build and "-j, --jobs N" in build and "--out DIR" in build
    assert "linux-x64, linux-aarch64, macosx-x64, macosx-aarch64" in build
    show = _help(run_cli, "config", "show")
    assert "Usage: runenv config show [OPTIONS] RUNTIME" in show
    for text in (build, show, _help(run_cli, "run"), _help(run_cli, "publish")):
        assert "<list[str]>" not in text and "<str>" not in text and "{runtime}" not in text.lower()


def test_command_summaries_are_whole_sentences(run_cli):
    top = _help(run_cli)
    assert "-w, --workspace DIR" in top and "-V, --version" in top and "[default: 0]" not in top
    commands = top.split("Commands:")[1]
    assert "..." not in commands
