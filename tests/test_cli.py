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
        (["config", "show"], "error: missing argument 'runtime'", "runenv config show --help"),
        (["-o", "yaml", "versions"], "error: invalid value for '--output' / '-o': 'yaml' is not one of", "runenv --help"),
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
