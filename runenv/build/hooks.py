"""Build hooks: commands run on the staged runtime prefix (`build.hooks.beforePack`, e.g. code signing)."""

from __future__ import annotations

import os
from pathlib import Path

from runenv.errors import BuildError
from runenv.proc import NotRun, output_tail, run_captured

HOOK_PATH = "build.hooks.beforePack"


def _describe(command: str | list[str]) -> str:
    return command if isinstance(command, str) else " ".join(command)


def run_before_pack(command: str | list[str], workspace_root: Path, prefix: Path, platform: str, runtime: str) -> None:
    """Run a beforePack command in the workspace root with RUNENV_PREFIX/PLATFORM/RUNTIME set; a non-zero exit
    fails the build."""
    given = {"RUNENV_PREFIX": str(prefix), "RUNENV_PLATFORM": platform, "RUNENV_RUNTIME": runtime}  # what it reads
    env = {**os.environ, **given}
    where = f"{HOOK_PATH} for {platform} ({_describe(command)!r})"
    try:
        proc = run_captured(command, cwd=workspace_root, env=env, merge_stderr=True)
    except NotRun as exc:
        raise BuildError(f"{where} could not start: {exc}") from None
    if proc.returncode != 0:
        tail = output_tail(proc.stdout)
        raise BuildError(f"{where} failed with exit code {proc.returncode}" + (f": {tail}" if tail else ""))
