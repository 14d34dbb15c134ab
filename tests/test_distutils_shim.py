"""The distutils shim: written, idempotent, never over a foreign sitecustomize, off by env or config."""

from __future__ import annotations

import glob
import hashlib
import subprocess

import pytest

from runenv.assemble import WheelToInstall, install_wheels
from runenv.config.models import RuntimeConfig
from runenv.distutils_shim import MARKER, shim_enabled, write_shim
from runenv.lock import LockedPackage
from runenv.platforms import get_platform
from tests.helpers.index import TestIndex
from tests.helpers.runtime_prefix import host_prefix


def test_shim_enabled_only_for_312_and_later_unless_turned_off(monkeypatch):
    on = RuntimeConfig()
    assert shim_enabled(on, "3.12.10") and shim_enabled(on, "3.13.1")
    assert not shim_enabled(on, "3.11.9")
    assert not shim_enabled(RuntimeConfig.model_validate({"build": {"distutilsShim": False}}), "3.12.10")
    monkeypatch.setenv("RUNENV_DISABLE_DISTUTILS_SHIM", "1")
    assert not shim_enabled(on, "3.12.10")


def test_write_shim_is_idempotent_and_leaves_a_foreign_sitecustomize_alone(tmp_path):
    first = write_shim(tmp_path)
    text = first.path.read_text()
    assert first.written and text.startswith(MARKER) and "SETUPTOOLS_USE_DISTUTILS" in text
    again = write_shim(tmp_path)
    assert again.written and again.path.read_text() == text
    foreign = tmp_path / "other"
    foreign.mkdir()
    (foreign / "sitecustomize.py").write_text("print('site policy')\n")
    result = write_shim(foreign)
    assert not result.written and "not written by runenv" in result.warning
    assert (foreign / "sitecustomize.py").read_text() == "print('site policy')\n"


def _python312() -> str | None:
    found = sorted(glob.glob("/root/.pyenv/versions/3.1[2-9]*/bin/python3"))
    return found[0] if found else None


def test_import_distutils_works_in_a_312_runtime_with_the_shim(package_index: TestIndex, tmp_path):
    python = _python312()
    if python is None:
        pytest.skip("no Python >= 3.12 on this machine")
    package_index.require("setuptools")
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    platform = get_platform("linux-x64")
    prefix = host_prefix(tmp_path / "rt", python, version)
    wheel = package_index.files["setuptools"]
    pkg = LockedPackage(
        "setuptools", wheel.name.split("-")[1], wheel.as_uri(), hashlib.sha256(wheel.read_bytes()).hexdigest(), "wheel"
    )
    install_wheels(prefix, platform, version, [WheelToInstall(wheel, wheel.name, pkg)])
    runtime_python = str(prefix / "bin" / "python3")
    probe = [runtime_python, "-c", "import distutils, os; print(os.environ['SETUPTOOLS_USE_DISTUTILS'])"]
    assert subprocess.run(probe, capture_output=True, text=True).returncode != 0
    write_shim(prefix / platform.site_packages(version))
    out = subprocess.run(probe, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "local"
    show = [runtime_python, "-c", "import os; print(os.environ['SETUPTOOLS_USE_DISTUTILS'])"]
    keep = subprocess.run(
        show, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "SETUPTOOLS_USE_DISTUTILS": "stdlib"}
    )
    assert keep.stdout.strip() == "stdlib"
