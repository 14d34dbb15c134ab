"""CLI command: `completion` — the shell completion script for bash, zsh, fish or PowerShell."""

from __future__ import annotations

from enum import Enum

import typer
from typer._completion_shared import get_completion_script  # typer's own scripts, matched to its protocol

from runenv.cli.app import COMPLETE_VAR, app

PROG = "runenv"


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"


@app.command()
def completion(shell: Shell = typer.Argument(..., help="bash, zsh, fish or powershell.")) -> None:
    """Print the shell completion script: `eval "$(runenv completion bash)"` in ~/.bashrc, or save it where your
    shell loads completions (zsh: a file `_runenv` on $fpath; fish: ~/.config/fish/completions/runenv.fish)."""
    typer.echo(get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell.value))
