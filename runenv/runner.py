"""Running commands with a built runtime: its unpacked prefix, command resolution, environment, activation."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from runenv.errors import UsageError
from runenv.platforms import Platform, get_platform, host_platform_key, is_host_runnable


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


def bin_dirs(prefix: Path, platform: Platform) -> list[Path]:
    """Directories to put first on PATH: the scripts dir, and on Windows the prefix holding python.exe."""
    dirs = [prefix / platform.scripts_dir]
    return [*dirs, prefix] if platform.is_windows else dirs


def runtime_env(prefix: Path, platform: Platform, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a command: the runtime's bin dirs first on PATH, no PYTHONHOME."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONHOME", None)
    env["PATH"] = os.pathsep.join([*map(str, bin_dirs(prefix, platform)), env.get("PATH", "")]).rstrip(os.pathsep)
    return env


def resolve_command(
    prefix: Path, platform: Platform, python_version: str, argv: list[str], env: dict[str, str]
) -> list[str]:
    """`python…` is the runtime's interpreter; other names are looked up in its bin dirs, then on PATH."""
    head, rest = argv[0], argv[1:]
    exe = ".exe" if platform.is_windows else ""
    major, minor = python_version.split(".")[:2]
    if head.removesuffix(exe) in ("python", f"python{major}", f"python{major}.{minor}"):
        return [str(prefix / platform.python_exe(python_version)), *rest]
    if os.sep in head or "/" in head:
        return argv
    found = shutil.which(head, path=env["PATH"])
    if found is None:
        raise UsageError(f"command {head!r} not found in {prefix / platform.scripts_dir} or on PATH")
    return [found, *rest]


def activation_lines(prefix: Path, platform: Platform, runtime: str) -> list[str]:
    """POSIX shell lines that put the runtime first on PATH (for `eval "$(runenv activate …)"`)."""
    dirs = ":".join(shlex.quote(str(d)) for d in bin_dirs(prefix, platform))
    return [
        f'export PATH={dirs}:"$PATH"',
        "unset PYTHONHOME",
        f"export RUNENV_RUNTIME={shlex.quote(runtime)}",
        f"export RUNENV_RUNTIME_PREFIX={shlex.quote(str(prefix))}",
        "hash -r 2>/dev/null || true",
    ]
