"""The interpreter's own version: asked from the executable, checked against the runtime's."""

from __future__ import annotations

from pathlib import Path

from runenv.errors import BuildError
from runenv.proc import NotRun, isolated_env, output_tail, run_captured


def interpreter_version(executable: Path) -> str:
    """`X.Y.Z` reported by running `executable` in isolated mode."""
    code = "import sys; print('.'.join(map(str, sys.version_info[:3])))"
    env = isolated_env()
    try:
        proc = run_captured([str(executable), "-I", "-S", "-B", "-c", code], timeout=60, env=env, log=False)
    except NotRun as exc:
        raise BuildError(f"cannot run {executable}: {exc}") from None
    if proc.returncode != 0:
        detail = output_tail(proc.stderr, lines=1) or "no output"
        raise BuildError(f"{executable} failed to start (exit {proc.returncode}): {detail}")
    return proc.stdout.strip()


def check_version(executable: Path, expected: str, origin: str, local: bool = False) -> None:
    """Refuse an interpreter whose real version is not the runtime's (a local prefix's fix differs from a PBS one)."""
    actual = interpreter_version(executable)
    if actual != expected:
        raise BuildError(
            f"{origin} contains Python {actual}, but the runtime needs {expected}",
            hint=version_fix(expected, actual, local),
        )


def version_fix(expected: str, actual: str, local: bool) -> str:
    """What to change when the interpreter's version is not the runtime's: a local prefix has no release or archive."""
    if local:
        return f"point python.path at a Python {expected} prefix, or name the runtime directory python-{actual}"
    return "check python.release and the mirror's archive, or the runtime directory's version"
