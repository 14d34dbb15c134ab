"""`runenv completion SHELL` (runenv/cli/commands/shell.py): scripts a shell accepts, and that complete verbs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_runenv


def wrapper(tmp_path: Path) -> Path:
    """A `runenv` executable on PATH that runs this checkout (what the completion scripts call)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "runenv"
    exe.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" -m runenv "$@"\n')
    exe.chmod(0o755)
    return bin_dir


def bash_complete(script: str, words: list[str], bin_dir: Path) -> list[str]:
    """What bash offers after `words` (the last one being completed), through the script's function."""
    quoted = " ".join(f"'{w}'" for w in words)
    program = f"""{script}
COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}
_runenv_completion runenv
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(bin_dir)}
    proc = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_script_is_valid_and_completes_verbs_and_options(tmp_path: Path) -> None:
    result = run_runenv("completion", "bash")
    assert result.code == 0, result.stderr
    script = result.stdout
    check = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    bin_dir = wrapper(tmp_path)
    assert bash_complete(script, ["runenv", "bu"], bin_dir) == ["build"]
    assert set(bash_complete(script, ["runenv", "p"], bin_dir)) == {"publish", "python"}
    assert "--platform" in bash_complete(script, ["runenv", "build", "--pl"], bin_dir)
    assert bash_complete(script, ["runenv", "python", "p"], bin_dir) == ["pin"]


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("zsh", "#compdef runenv"), ("fish", "complete --command runenv"), ("powershell", "Register-ArgumentCompleter")],
)
def test_other_shells_get_their_script(shell: str, marker: str) -> None:
    result = run_runenv("completion", shell)
    assert result.code == 0 and marker in result.stdout and "_RUNENV_COMPLETE" in result.stdout


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_parses() -> None:
    script = run_runenv("completion", "zsh").stdout
    assert subprocess.run(["zsh", "-n"], input=script, text=True).returncode == 0


def test_unknown_shell_is_a_usage_error() -> None:
    result = run_runenv("completion", "tcsh")
    assert result.code == 2
    assert result.stderr.startswith("error: ") and "tcsh" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_platform_keys_and_the_workspace_s_runtime_names(make_workspace, tmp_path: Path) -> None:
    ws = make_workspace(runtimes={"3.12.10": {}, "3.12.10-slim": {}, "3.11.9": {}})
    script = run_runenv("completion", "bash").stdout
    bin_dir = wrapper(tmp_path)
    assert set(bash_complete(script, ["runenv", "build", "-p", "linux-"], bin_dir)) == {"linux-x64", "linux-aarch64"}
    assert bash_complete(script, ["runenv", "lock", "3.11.9", "--platform", "win"], bin_dir) == ["windows-x64"]
    named = bash_complete(script, ["runenv", "-w", str(ws), "build", "3.12"], bin_dir)
    assert set(named) == {"3.12.10", "3.12.10-slim"}
    assert bash_complete(script, ["runenv", "-w", str(ws), "run", "3.11"], bin_dir) == ["3.11.9"]
