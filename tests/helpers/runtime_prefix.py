"""Runtime prefixes for install tests: one the host can run (venv-style, built on the running interpreter)
and a synthetic windows-x64 layout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from runenv.platforms import Platform, get_platform, host_platform_key

HOST_VERSION = ".".join(str(p) for p in sys.version_info[:3])


def host_prefix(dest: Path, python: str | None = None, version: str = HOST_VERSION) -> Path:
    """A prefix whose `bin/python3` runs `python` (default: this interpreter) with the prefix as sys.prefix.

    It is a venv in layout (pyvenv.cfg + symlinked interpreter), so it keeps working when moved.
    """
    real = Path(os.path.realpath(python or sys.executable))
    platform = host_runtime_platform()
    (dest / "bin").mkdir(parents=True)
    (dest / platform.site_packages(version)).mkdir(parents=True)
    (dest / "pyvenv.cfg").write_text(f"home = {real.parent}\ninclude-system-site-packages = false\nversion = {version}\n")
    os.symlink(real, dest / platform.python_exe(version))
    return dest


def host_runtime_platform() -> Platform:
    return get_platform(host_platform_key() or "linux-x64")


def windows_prefix(dest: Path, version: str = "3.12.10") -> Path:
    """The windows-x64 layout: python.exe (a dummy), Lib/site-packages, Scripts/."""
    platform = get_platform("windows-x64")
    (dest / platform.site_packages(version)).mkdir(parents=True)
    (dest / platform.scripts_dir).mkdir()
    (dest / "python.exe").write_bytes(b"MZ not a real interpreter")
    return dest
