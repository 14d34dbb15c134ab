"""Building wheels from sdists and git checkouts with the runtime's own interpreter, on a native host."""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from runenv.budget import UnpackBudget
from runenv.build.packages.assemble import PACKAGES_DIR, place_in_packages_dir
from runenv.build.packages.lock import LockedPackage
from runenv.build.packages.repair import repair_wheel
from runenv.build.packages.resolve import uv_bin
from runenv.build.packages.vcs import (
    cached_wheel,
    checkout,
    is_pure,
    store_wheel,
    strip_credentials,
    wheel_cache_dir,
)
from runenv.compat import tomllib
from runenv.config.models import BuildWheelSpec
from runenv.errors import BuildError
from runenv.fetch import Downloader
from runenv.files import move_into_place
from runenv.platforms import DEFAULT_MANYLINUX, RuntimeLayout, is_host_runnable
from runenv.proc import NotRun, output_tail, run_captured

PACKAGE_ROOT = "{packageRoot}"  # the runtime's directory (python-<runtime>/), as in the seed system
SDIST_ROOT = "{sdistRoot}"  # the unpacked sdist being built


@dataclass(frozen=True)
class SdistOutcome:
    """A built wheel (to install) or an sdist shipped in `packages/` for the target to build."""

    package: LockedPackage
    wheel: Path | None = None
    shipped: Path | None = None


@dataclass(frozen=True)
class SourceBuild:
    """How one build makes wheels from sdists and git checkouts: for which runtime (its layout), with uv's index
    options, the build timeout, the manylinux floor wheels built on Linux are repaired for."""

    layout: RuntimeLayout
    index: list[str] = field(default_factory=list)
    timeout: int = 1800
    manylinux: str = DEFAULT_MANYLINUX
    package_root: Path | None = None  # the runtime's directory: `{packageRoot}` in configSettings
    warn: Callable[[str], None] = lambda _message: None

    @property
    def native(self) -> bool:
        """Whether the runtime's own interpreter builds here: the host runs the platform and the prefix has it."""
        return is_host_runnable(self.layout.platform.key) and self.layout.python.exists()

    def repaired(self, wheel: Path, package: LockedPackage) -> Path:
        """The built wheel after auditwheel; one that cannot meet the floor is installed as built, with a warning,
        and verify's static checks fail it naming the file and the library or symbol."""
        repaired = repair_wheel(wheel, self.layout.platform, self.layout.version, self.manylinux)
        if repaired.problem:
            self.warn(f"{package.name} {package.version}: {repaired.problem}")
        return repaired.wheel


def unpack_sdist(sdist: Path, filename: str, into: Path) -> Path:
    """Unpack an sdist (.tar.gz or .zip) safely, within its unpack budget, and return its top-level directory."""
    into.mkdir(parents=True, exist_ok=True)
    budget = UnpackBudget(sdist, into, filename)
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(sdist) as zf:
                for name in zf.namelist():
                    if not (into / name).resolve().is_relative_to(into.resolve()):
                        raise BuildError(f"{filename}: member {name} escapes the archive")
                budget.take_zip(zf)
                zf.extractall(into)
        else:
            with tarfile.open(sdist) as tar:
                for member in tar:  # each counted from its header, before its bytes are read
                    budget.take(member.name, member.size if member.isfile() else 0)
                    tar.extract(member, into, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise BuildError(f"cannot unpack sdist {filename}: {exc}") from None
    roots = [p for p in into.iterdir() if p.is_dir()]
    if len(roots) != 1:
        raise BuildError(f"sdist {filename} does not hold exactly one top-level directory")
    return roots[0]


def _run(args: list[str], what: str, timeout: int) -> None:
    env = dict(os.environ)
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    try:
        proc = run_captured(args, env=env, timeout=timeout)
    except NotRun as exc:
        raise BuildError(f"{what}: {exc}") from None
    if proc.returncode != 0:
        raise BuildError(f"{what}: {output_tail(proc.stderr or proc.stdout, lines=6)}")


def build_wheel(
    sdist: Path, package: LockedPackage, python: Path, out_dir: Path, build: SourceBuild, spec: BuildWheelSpec | None
) -> Path:
    """Build `package`'s wheel from its sdist with `python`; build requirements live only in a temp env.

    In `configSettings`, `{packageRoot}` is the build's `package_root` (the runtime's directory) and `{sdistRoot}`
    the unpacked sdist.

    The work happens in a temp directory beside `out_dir` (in a build: the owned staging directory, so a
    killed build leaves nothing in the system temp dir, and the wheel moves in without crossing file systems).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".sdist-{package.name}-") as tmp:
        root = unpack_sdist(sdist, package.filename, Path(tmp))
        what = f"building {package.name} {package.version} from {package.filename}"
        return build_tree(root, what, python, out_dir, build, spec)


def build_tree(
    root: Path, what: str, python: Path, out_dir: Path, build: SourceBuild, spec: BuildWheelSpec | None
) -> Path:
    """Build the wheel of the source tree `root` (`{sdistRoot}`) with `python` into `out_dir`, with the build's
    index options and timeout; `what` names it."""
    spec = spec or BuildWheelSpec()
    index, timeout = build.index, build.timeout
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=".build-") as tmp:
        work = Path(tmp)
        settings = [expand_settings(s, build.package_root, root) for s in spec.config_settings]
        args = [uv_bin(), "build", "--wheel", "--quiet", "--out-dir", str(work / "dist"), *index]
        for setting in settings:
            args.append(f"--config-setting={setting}")
        if spec.build_requires:
            env_dir = work / "build-env"
            _run([uv_bin(), "venv", "--quiet", "--python", str(python), str(env_dir)], what, timeout)
            env_python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
            requires = [*spec.build_requires, *_declared_build_requires(root)]
            _run([uv_bin(), "pip", "install", "--quiet", "--python", str(env_python), *index, *requires], what, timeout)
            args += ["--no-build-isolation", "--python", str(env_python)]
        else:
            args += ["--python", str(python)]
        _run([*args, str(root)], what, timeout)
        built = sorted((work / "dist").glob("*.whl"))
        if len(built) != 1:
            raise BuildError(f"{what}: expected one wheel, got {len(built)}")
        return move_into_place(built[0], out_dir / built[0].name)


def expand_settings(setting: str, package_root: Path | None, sdist_root: Path) -> str:
    """One `configSettings` entry with `{packageRoot}` and `{sdistRoot}` replaced."""
    if PACKAGE_ROOT in setting and package_root is None:
        raise BuildError(f"configSettings {setting!r}: {PACKAGE_ROOT} has no runtime directory here")
    return setting.replace(PACKAGE_ROOT, str(package_root)).replace(SDIST_ROOT, str(sdist_root))


def _declared_build_requires(root: Path) -> list[str]:
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return ["setuptools>=40.8.0"]
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return list(data.get("build-system", {}).get("requires", ["setuptools>=40.8.0"]))


def handle_sdist(
    sdist: Path,
    package: LockedPackage,
    build: SourceBuild,
    out_dir: Path,
    *,
    ship_sdists: bool = False,
    spec: BuildWheelSpec | None = None,
) -> SdistOutcome:
    """Build on a native host with the runtime's interpreter (on Linux repaired for the `manylinux` floor);
    elsewhere ship the sdist or fail naming it."""
    layout = build.layout
    if build.native:
        wheel = build_wheel(sdist, package, layout.python, out_dir, build, spec)
        return SdistOutcome(package, wheel=build.repaired(wheel, package))
    if ship_sdists:
        return SdistOutcome(package, shipped=place_in_packages_dir(layout.prefix, sdist, package.filename))
    key = layout.platform.key
    raise BuildError(
        f"{package.name} {package.version} needs a build from source for {key}, which this host cannot run",
        hint=f"build on a {key} machine, or set build.shipSdists to ship it in {PACKAGES_DIR}/",
    )


def handle_vcs(
    package: LockedPackage,
    build: SourceBuild,
    checkouts: Downloader,
    *,
    fetch_url: str,
    spec: BuildWheelSpec | None = None,
) -> Path:
    """The wheel of a locked git package (at its pinned commit), built once per (commit, Python, target, floor, build
    settings) and cached in the downloader's cache.

    Built with the runtime's interpreter where the host runs it (on Linux repaired for the `manylinux` floor); for
    another platform with runenv's own interpreter, and then only a pure-Python wheel is accepted. `fetch_url` may
    carry the config's credentials.
    """
    pin = package.vcs
    if pin is None:
        raise BuildError(f"{package.name} {package.version}: a git package without a pinned commit in its lock")
    layout, native = build.layout, build.native
    platform, version = layout.platform, layout.version
    key = {
        "python": version,
        "target": platform.key if native else "pure",
        "manylinux": build.manylinux if native and platform.os == "linux" else None,
        "subdirectory": pin.subdirectory,
        "build": spec.model_dump(mode="json") if spec else None,
    }
    cache_root = checkouts.cache.root
    entry = wheel_cache_dir(cache_root, pin.url, pin.commit, key)
    wheel = cached_wheel(entry)
    if wheel is not None:
        return wheel
    source = f"git {strip_credentials(pin.url)}@{pin.commit[:12]}"
    tree = checkout(checkouts, fetch_url, pin.commit)
    with tempfile.TemporaryDirectory(dir=layout.prefix.parent, prefix=".vcs-") as tmp:  # in the owned staging dir
        src = Path(tmp) / "src"
        shutil.copytree(tree, src, symlinks=True)  # the build writes into its tree; the cached checkout stays clean
        root = src / pin.subdirectory if pin.subdirectory else src
        what = f"building {package.name} {package.version} from {source}"
        tree_build = replace(build, index=[*build.index, "--offline"]) if checkouts.offline else build
        builder = layout.python if native else Path(sys.executable)
        built = build_tree(root, what, builder, Path(tmp) / "dist", tree_build, spec)
        if not native and not is_pure(built, version):
            raise BuildError(
                f"{package.name} {package.version} ({source}) builds a platform-specific wheel ({built.name}); "
                f"it needs a build on {platform.key}, which this host cannot run",
                hint=f"build on a {platform.key} machine, or skip {package.name} on {platform.key}",
            )
        if native:
            built = build.repaired(built, package)
        return store_wheel(entry, built)
