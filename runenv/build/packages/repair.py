"""Repairing wheels runenv builds from source on Linux with PyPA auditwheel: the host libraries they need bundled
into `<package>.libs/`, their tags set to the runtime's glibc floor (`build.manylinux`).

auditwheel runs as `python -m auditwheel repair`, a subprocess: its command line is its stable interface (the
manylinux images and cibuildwheel drive it that way), while its Python API is internal and changes between
releases, and it reports through logging and `sys.exit`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runenv.build.interpreter.relocate import patchelf
from runenv.build.packages.vcs import is_pure
from runenv.build.verify.policy import manylinux_policy
from runenv.errors import BuildError
from runenv.files import move_into_place
from runenv.platforms import Platform
from runenv.proc import NotRun, run_captured


@dataclass(frozen=True)
class Repaired:
    """The wheel to install (repaired, or as built when it cannot meet the floor) and why it could not be."""

    wheel: Path
    problem: str | None = None  # auditwheel's reason; verify then names the file and the library or symbol


def floor_tag(platform: Platform, manylinux: str) -> str:
    """The platform tag of the floor `2_X` for `platform`: the newest manylinux policy at or below it."""
    return f"{manylinux_policy(manylinux, platform.arch).name}_{platform.arch}"


def needs_repair(wheel: Path, platform: Platform, python_version: str) -> bool:
    """Whether auditwheel has work: a platform wheel built for a Linux target (pure wheels need no floor)."""
    return platform.os == "linux" and sys.platform == "linux" and not is_pure(wheel, python_version)


def repair_wheel(wheel: Path, platform: Platform, python_version: str, manylinux: str, timeout: int = 600) -> Repaired:
    """`wheel` with its host libraries bundled and retagged for the floor, in its own directory (the built wheel
    is replaced); left as built, with auditwheel's reason, when it needs more than the floor allows."""
    if not needs_repair(wheel, platform, python_version):
        return Repaired(wheel)
    plat = floor_tag(platform, manylinux)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(patchelf()).parent), env.get("PATH", os.defpath)])  # auditwheel runs it
    with tempfile.TemporaryDirectory(dir=wheel.parent, prefix=".repair-") as tmp:
        args = [sys.executable, "-m", "auditwheel", "repair", "--plat", plat, "--only-plat", "-w", tmp, str(wheel)]
        try:
            proc = run_captured(args, env=env, timeout=timeout, log=False)
        except NotRun as exc:
            raise BuildError(f"auditwheel repair of {wheel.name}: {exc}") from None
        repaired = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or len(repaired) != 1:
            return Repaired(wheel, f"auditwheel: {_reason(proc).replace(str(wheel), wheel.name)}")
        wheel.unlink()
        return Repaired(move_into_place(repaired[0], wheel.parent / repaired[0].name))


def _reason(proc: subprocess.CompletedProcess[str]) -> str:
    """auditwheel's own error line, without argparse's `prog: error:` prefix."""
    lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    errors = [line.split("error: ", 1)[1] for line in lines if "error: " in line]
    return (errors or lines or [f"exit code {proc.returncode}"])[-1]
