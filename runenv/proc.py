"""Running a command to its end with its output captured: one wrapper for every tool runenv drives (git, uv,
auditwheel, patchelf, hooks, the runtime's own Python)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from runenv import progress
from runenv.redact import redact


class NotRun(Exception):
    """A command that did not run to its end: it could not start (the reason `OSError` gave) or it timed out."""

    def __init__(self, reason: str, *, timed_out: bool) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


def run_captured(
    args: Sequence[str] | str,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input: str | None = None,
    merge_stderr: bool = False,
    log: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`args` (a string runs in the shell) with stdout and stderr captured as text, logged by `progress.ran` when
    `log`; `NotRun` when it cannot start or outlives `timeout` seconds."""
    try:
        proc = subprocess.run(
            args,
            shell=isinstance(args, str),
            cwd=cwd,
            env=env,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,  # a captured command cannot ask the user
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise NotRun(f"timed out after {timeout}s", timed_out=True) from None
    except OSError as exc:
        raise NotRun(str(exc.strerror or exc), timed_out=False) from None
    if log:
        progress.ran(args, proc.returncode, (proc.stdout or "") + (proc.stderr or ""))
    return proc


def output_tail(text: str, lines: int = 3) -> str:
    """The last `lines` lines of a command's output on one line, `|` between them, secrets redacted."""
    return redact(" | ".join(line.strip() for line in text.strip().splitlines()[-lines:]))


def isolated_env() -> dict[str, str]:
    """The host environment without anything that points a runtime's Python at other code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
