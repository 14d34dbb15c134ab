"""Build hooks: commands run on the staged runtime prefix (`build.hooks.beforePack`, e.g. code signing)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from runenv.errors import BuildError
from runenv.proc import NotRun, output_tail, run_captured

if TYPE_CHECKING:
    from runenv.build import BuildContext

HOOK_PATH = "build.hooks.beforePack"


def _describe(command: str | list[str]) -> str:
    return command if isinstance(command, str) else " ".join(command)


def run_before_pack(ctx: BuildContext) -> None:
    """Run the platform's beforePack command in the workspace root with RUNENV_PREFIX/PLATFORM/RUNTIME set.

    A non-zero exit fails the build; the command that ran is recorded in the manifest.
    """
    command = ctx.loaded.config.build.hooks.before_pack_for(ctx.platform.key)
    if command is None:
        return
    manifest = ctx.started_manifest()
    env = {
        **os.environ,
        "RUNENV_PREFIX": str(ctx.prefix),
        "RUNENV_PLATFORM": ctx.platform.key,
        "RUNENV_RUNTIME": ctx.loaded.runtime.name,
    }
    where = f"{HOOK_PATH} for {ctx.platform.key} ({_describe(command)!r})"
    try:
        proc = run_captured(command, cwd=ctx.workspace.root, env=env, merge_stderr=True)
    except NotRun as exc:
        raise BuildError(f"{where} could not start: {exc}") from None
    if proc.returncode != 0:
        tail = output_tail(proc.stdout)
        raise BuildError(f"{where} failed with exit code {proc.returncode}" + (f": {tail}" if tail else ""))
    manifest.build["before-pack-hook"] = command
