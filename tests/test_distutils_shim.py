"""The distutils shim: written, idempotent, never over a foreign sitecustomize, off by env or config; in a built
3.12 runtime `import distutils` works in the terminal and in a Jupyter kernel (the seed's acceptance test)."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runenv.build.interpreter.pbs import archive_name
from runenv.build.packages.assemble import WheelToInstall, install_wheels
from runenv.build.packages.distutils_shim import MARKER, shim_enabled, write_shim
from runenv.build.packages.lock import LockedPackage
from runenv.config.models import RuntimeConfig
from runenv.platforms import RuntimeLayout, get_platform
from tests.helpers.built import tar_names, unpack
from tests.helpers.http import StaticServer
from tests.helpers.index import TestIndex, uv_env, write_simple_index
from tests.helpers.pbs import FLAVOR, RELEASE, PbsMirror, make_tar_gz, stage_host_prefix
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
    install_wheels(RuntimeLayout(prefix, platform, version), [WheelToInstall(wheel, wheel.name, pkg)])
    runtime_python = str(prefix / "bin" / "python3")
    probe = [runtime_python, "-c", "import distutils, os; print(os.environ['SETUPTOOLS_USE_DISTUTILS'])"]
    assert subprocess.run(probe, capture_output=True, text=True).returncode != 0
    write_shim(prefix / platform.site_packages(version))
    out = subprocess.run(probe, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "local"
    where = [
        runtime_python,
        "-c",
        "import sys; print('setuptools' in sys.modules); import distutils; print(distutils.__file__)",
    ]
    lazy = subprocess.run(where, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert lazy.returncode == 0, lazy.stderr
    imported_at_start, distutils_file = lazy.stdout.split()
    assert imported_at_start == "False"  # setuptools loads when distutils is imported, not at every start
    assert Path(distutils_file).parent.parent.name == "setuptools"  # setuptools/_distutils/__init__.py
    show = [runtime_python, "-c", "import os; print(os.environ['SETUPTOOLS_USE_DISTUTILS'])"]
    keep = subprocess.run(
        show, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "SETUPTOOLS_USE_DISTUTILS": "stdlib"}
    )
    assert keep.stdout.strip() == "stdlib"


JUPYTER_ENV = "RUNENV_TEST_JUPYTER_DIR"


@pytest.fixture
def jupyter_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The wheels `.ci/fetch-jupyter` cached (ipykernel and its dependencies for cp312, setuptools, wheel), served
    as a loopback PEP 503 index that uv is pointed at."""
    where = os.environ.get(JUPYTER_ENV)
    if not where or not (Path(where) / "done").exists():
        pytest.skip(f"no Jupyter test wheels: run `.ci/fetch-jupyter DIR` and set {JUPYTER_ENV}=DIR")
    root = tmp_path / "jupyter-index"
    (root / "files").mkdir(parents=True)
    wheels = []
    for wheel in sorted(Path(where).glob("*.whl")):
        wheels.append(root / "files" / wheel.name)
        wheels[-1].symlink_to(wheel)
    write_simple_index(root, wheels)
    with StaticServer(root) as server:
        uv_env(monkeypatch, tmp_path, f"{server.url}/simple")
        yield f"{server.url}/simple"


@pytest.fixture
def pbs_312(pbs_mirror: PbsMirror, tmp_path: Path) -> str:
    """A pyenv CPython >= 3.12 packed as a PBS archive on the test mirror; returns its version."""
    python = _python312()
    if python is None:
        pytest.skip("no Python >= 3.12 on this machine")
    base = Path(python).parent.parent
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    minor = ".".join(version.split(".")[:2])
    linux = get_platform("linux-x64")
    prefix = stage_host_prefix(tmp_path / "pbs-312", base, minor)
    archive = make_tar_gz(prefix, tmp_path / archive_name(version, RELEASE, linux, FLAVOR))
    pbs_mirror.add(archive, pbs_mirror.name("linux-x64", version))
    return version


def _kernel_result(python: Path, code: str, tmp_path: Path) -> str:
    """What `code` evaluates to in an ipykernel of `python`, started and driven through jupyter_client from here."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = tmp_path / "kernels" / "runtime"
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "runtime", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(spec.parent)])
    km = KernelManager(kernel_name="runtime", kernel_spec_manager=specs, connection_file=str(tmp_path / "conn.json"))
    dirs = {f"JUPYTER_{d}_DIR": str(tmp_path / "jupyter" / d.lower()) for d in ("RUNTIME", "DATA", "CONFIG")}
    km.start_kernel(env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "IPYTHONDIR": str(tmp_path / "ipy"), **dirs})
    results: list[str] = []
    errors: list[str] = []

    def on_output(msg: dict) -> None:
        if msg["msg_type"] == "execute_result":
            results.append(msg["content"]["data"]["text/plain"])
        elif msg["msg_type"] == "error":
            errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

    try:
        client = km.client()
        client.start_channels()
        client.wait_for_ready(timeout=120)
        reply = client.execute_interactive(code, timeout=120, output_hook=on_output)
        client.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", errors
    return results[-1]


def test_import_distutils_works_in_a_jupyter_kernel_of_a_built_312_runtime_and_the_escape_hatch_writes_no_shim(
    jupyter_index, pbs_312, build_workspace, run_cli, tmp_path, monkeypatch
):
    pytest.importorskip("jupyter_client", minversion="8")
    # What verify finds in ipykernel's real dependencies, allowed as a user would: matplotlib-inline is the backend
    # for matplotlib, which nothing requires; debugpy's "any" wheel carries a process-attach helper built for glibc
    # 2.34, loaded only into a process being debugged.
    optional = {
        "matplotlib-inline": {"matplotlib_inline": "No module named 'matplotlib'"},
        "debugpy": {"debugpy._vendored.pydevd.pydevd_attach_to_process.attach_linux_amd64": "GLIBC_2.34"},
    }
    config = {"packages": {"dependencies": ["ipykernel"]}, "verify": {"allow": optional}}
    ws = build_workspace(runtimes={pbs_312: config})
    built = run_cli("-w", ws, "build", pbs_312, "--platform", "linux-x64")
    assert built.code == 0, built.stderr
    stem = f"python-{pbs_312}-linux-x64"
    minor = ".".join(pbs_312.split(".")[:2])
    assert f"{stem}/lib/python{minor}/site-packages/sitecustomize.py" in tar_names(ws / "dist" / f"{stem}.tar.gz")
    prefix = unpack(ws, stem, tmp_path / "unpacked")
    code = 'import distutils, os; os.environ["SETUPTOOLS_USE_DISTUTILS"]'
    terminal = [str(prefix / "bin" / "python3"), "-c", f"{code.rsplit(';', 1)[0]}; print({code.rsplit('; ', 1)[1]})"]
    out = subprocess.run(terminal, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0 and out.stdout.strip() == "local", out.stderr
    assert _kernel_result(prefix / "bin" / "python3", code, tmp_path / "kernel") == "'local'"

    monkeypatch.setenv("RUNENV_DISABLE_DISTUTILS_SHIM", "1")
    rebuilt = run_cli("-w", ws, "build", pbs_312, "--platform", "linux-x64")
    assert rebuilt.code == 0, rebuilt.stderr
    names = tar_names(ws / "dist" / f"{stem}.tar.gz")
    assert f"{stem}/lib/python{minor}/site-packages/sitecustomize.py" not in names
    assert f"{stem}/lib/python{minor}/site-packages/ipykernel/__init__.py" in names
