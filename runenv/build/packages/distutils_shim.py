"""The distutils shim for Python >= 3.12: a runenv-marked sitecustomize that lets setuptools provide distutils."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runenv import settings
from runenv.config.models import RuntimeConfig
from runenv.files import write_text_atomic
from runenv.platforms import major_minor

MARKER = "# runenv: distutils shim"
SHIM_REQUIREMENTS = ("setuptools", "wheel")
DISABLE_ENV = settings.SHIM_ENV

SHIM_SOURCE = f'''{MARKER} (written by runenv; delete this file to turn it off)
"""Python 3.12 removed distutils; setuptools ships a replacement that this makes importable.

setuptools' import hook loads it when distutils is first imported; importing setuptools itself here would add
a large fraction of a second to every start of this interpreter.
"""
import os

os.environ.setdefault("SETUPTOOLS_USE_DISTUTILS", "local")
try:
    import _distutils_hack  # setuptools' hook, as its distutils-precedence.pth installs it
except Exception:
    try:
        import setuptools  # noqa: F401  (a setuptools without the hook module installs it on import)
    except Exception:
        pass
else:
    if _distutils_hack.enabled():
        _distutils_hack.add_shim()
'''


def shim_configured(config: RuntimeConfig, python_version: str) -> bool:
    """Whether the config asks for the shim (Python >= 3.12 and `build.distutilsShim`): what the lock follows,
    so setuptools and wheel are locked whatever the environment of the one who locks."""
    return major_minor(python_version) >= (3, 12) and config.build.distutils_shim


def shim_enabled(config: RuntimeConfig, python_version: str) -> bool:
    """Whether a build writes the shim: configured, and not turned off for this build by
    RUNENV_DISABLE_DISTUTILS_SHIM (the escape hatch: a switch of the build, not an input of the lock)."""
    return shim_configured(config, python_version) and not settings.current().distutils_shim_off


@dataclass(frozen=True)
class ShimResult:
    """What happened to `sitecustomize.py`."""

    path: Path
    written: bool
    warning: str | None = None


def write_shim(site_packages: Path) -> ShimResult:
    """Write the shim as `sitecustomize.py`; an existing file without the runenv marker is left alone."""
    target = site_packages / "sitecustomize.py"
    if target.exists():
        head = target.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
        if not head or not head[0].startswith(MARKER):
            return ShimResult(
                target,
                False,
                f"{target} exists and was not written by runenv; distutils shim not installed",
            )
    write_text_atomic(target, SHIM_SOURCE)
    return ShimResult(target, True)
