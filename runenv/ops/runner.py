"""Running commands with a built runtime: its unpacked prefix, command resolution, environment, activation."""

from __future__ import annotations

import os
import shlex
import shutil

from runenv.errors import UsageError
from runenv.platforms import Platform, RuntimeLayout, get_platform, host_platform_key, is_host_runnable


def host_runnable_platform(key: str | None, verb: str) -> Platform:
    """`key` (default: this machine's platform) when this machine can run its binaries."""
    chosen = key or host_platform_key()
    if chosen is None:
        raise UsageError(f"cannot {verb}: this machine is none of the supported platforms")
    platform = get_platform(chosen)
    if not is_host_runnable(chosen):
        raise UsageError(
            f"cannot {verb} a {chosen} runtime on this machine ({host_platform_key()})",
            hint="run it on a matching host",
        )
    return platform


def runtime_env(layout: RuntimeLayout, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a command: the runtime's bin dirs first on PATH, no PYTHONHOME."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONHOME", None)
    env["PATH"] = os.pathsep.join([*map(str, layout.path_dirs), env.get("PATH", "")]).rstrip(os.pathsep)
    return env


def resolve_command(layout: RuntimeLayout, argv: list[str], env: dict[str, str]) -> list[str]:
    """`python…` is the runtime's interpreter; other names are looked up in its bin dirs, then on PATH."""
    head, rest = argv[0], argv[1:]
    if layout.is_python(head):
        return [str(layout.python), *rest]
    if os.sep in head or "/" in head:
        return argv
    found = shutil.which(head, path=env["PATH"])
    if found is None:
        raise UsageError(f"command {head!r} not found in {layout.scripts} or on PATH")
    return [found, *rest]


def activation_lines(layout: RuntimeLayout, runtime: str) -> list[str]:
    """POSIX shell lines that put the runtime first on PATH (for `eval "$(runenv activate …)"`)."""
    dirs = ":".join(shlex.quote(str(d)) for d in layout.path_dirs)
    return [
        f'export PATH={dirs}:"$PATH"',
        "unset PYTHONHOME",
        f"export RUNENV_RUNTIME={shlex.quote(runtime)}",
        f"export RUNENV_RUNTIME_PREFIX={shlex.quote(str(layout.prefix))}",
        "hash -r 2>/dev/null || true",
    ]
