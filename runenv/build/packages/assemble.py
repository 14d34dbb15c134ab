"""Installing locked wheels into a runtime prefix so that the tree stays relocatable."""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.records import RecordEntry
from installer.scripts import Script
from installer.sources import WheelFile
from installer.utils import Scheme

from runenv.budget import UnpackBudget
from runenv.build.interpreter.relocate import sh_trampoline
from runenv.build.manifest import PackageEntry
from runenv.build.packages.lock import LockedPackage
from runenv.cache import sha256_file
from runenv.config.copy_sources import unsafe_link
from runenv.config.models import SITE_PACKAGES, CopyFile
from runenv.errors import BuildError, IntegrityError
from runenv.files import COPY_CHUNK, atomic_file
from runenv.owner import temp_dir
from runenv.platforms import Platform, RuntimeLayout

if TYPE_CHECKING:
    from installer.scripts import ScriptSection  # defined for type checkers only

How = Literal["wheel", "built-from-sdist", "built-from-vcs"]
PACKAGES_DIR = "packages"


@dataclass(frozen=True)
class WheelToInstall:
    """A wheel file on disk (a cache blob or a freshly built wheel) and the locked package it installs."""

    path: Path
    filename: str
    package: LockedPackage
    how: How = "wheel"


def posix_launcher_shebang(platform: Platform, python_version: str) -> str:
    """A `/bin/sh` trampoline that runs the script with the interpreter next to it, wherever the tree is."""
    return sh_trampoline(Path(platform.python_exe(python_version)).name)


def windows_launcher_shebang(platform: Platform, python_version: str) -> str:
    """A distlib launcher shebang resolved against the launcher's own directory (`Scripts\\..\\python.exe`)."""
    return "<launcher_dir>\\..\\" + Path(platform.python_exe(python_version)).name


class RuntimeDestination(SchemeDictionaryDestination):
    """installer's destination with relocatable POSIX scripts (its Windows launchers already are, given the shebang);
    `written` lists the files of the wheel being installed."""

    written: list[Path]

    def write_file(
        self, scheme: Scheme, path: str | os.PathLike[str], stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        # Wheels often lose the executable bit of `.data/scripts`; a script is always meant to run.
        entry = super().write_file(scheme, path, stream, is_executable or scheme == "scripts")
        self.written.append(Path(self.scheme_dict[scheme]) / path)
        return entry

    def write_script(self, name: str, module: str, attr: str, section: ScriptSection) -> RecordEntry:
        if self.script_kind != "posix":
            return super().write_script(name, module, attr, section)
        _, code = Script(name, module, attr, section).generate("python", "posix")
        body = code.split(b"\n", 1)[1]
        data = f"#!{self.interpreter}\n".encode() + body
        with BytesIO(data) as stream:
            return self.write_to_fs(Scheme("scripts"), name, stream, is_executable=True)


def scheme_for(layout: RuntimeLayout) -> dict[str, str]:
    """installer's scheme paths for the runtime prefix."""
    return {
        "purelib": str(layout.site_packages),
        "platlib": str(layout.site_packages),
        "headers": str(layout.include),
        "scripts": str(layout.scripts),
        "data": str(layout.prefix),
    }


def install_wheels(
    layout: RuntimeLayout,
    wheels: Iterable[WheelToInstall],
    *,
    wheelhouse: bool = False,
    on_installed: Callable[[list[Path]], None] = lambda _files: None,
) -> list[PackageEntry]:
    """Install every wheel (RECORD, INSTALLER=runenv, scripts, .data) and return the manifest records.

    `on_installed` gets the files of each wheel once it is installed (the byte-compiler's `submit`).
    """
    prefix, platform, python_version = layout.prefix, layout.platform, layout.version
    if platform.is_windows:
        kind, shebang = "win-amd64", windows_launcher_shebang(platform, python_version)
    else:
        kind, shebang = "posix", posix_launcher_shebang(platform, python_version)
    destination = RuntimeDestination(
        scheme_for(layout),
        interpreter=shebang,
        script_kind=kind,  # type: ignore[arg-type]
    )
    installed = []
    with temp_dir("wheels") as tmp:
        for item in wheels:
            # installer reads the distribution name and version from the file name; cache blobs have none.
            named = tmp / item.filename
            os.symlink(item.path.resolve(), named)
            destination.written = []
            try:
                with zipfile.ZipFile(item.path) as zf:  # its declared sizes, before anything is written
                    UnpackBudget(item.path, prefix, item.filename).take_zip(zf)
                with WheelFile.open(named) as source:
                    install(source, destination, {"INSTALLER": b"runenv\n"})
            except IntegrityError:
                raise
            except Exception as exc:
                raise BuildError(f"cannot install {item.filename} into {prefix} for {platform.key}: {exc}") from None
            on_installed(destination.written)
            if wheelhouse:
                place_in_packages_dir(prefix, item.path, item.filename)
            installed.append(package_entry(item))
    return installed


def package_entry(item: WheelToInstall) -> PackageEntry:
    """The manifest record of an installed wheel."""
    p = item.package
    if p.vcs is None:
        return PackageEntry(p.name, p.version, p.sha256, item.how, p.index, wheel=item.filename)
    # the built wheel's hash; the source is the commit
    return PackageEntry(
        p.name, p.version, sha256_file(item.path), item.how, url=p.url, commit=p.vcs.commit, wheel=item.filename
    )


def place_in_packages_dir(prefix: Path, source: Path, filename: str) -> Path:
    """Copy an artifact into `<prefix>/packages/` (wheelhouse, shipped sdists)."""
    target = prefix / PACKAGES_DIR / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as src, atomic_file(target) as out:
        shutil.copyfileobj(src, out, COPY_CHUNK)
    return target


def copy_source(workspace_root: Path, entry: CopyFile) -> Path:
    """Where a `copyFiles` entry reads from."""
    return workspace_root / entry.from_


def copy_files(workspace_root: Path, layout: RuntimeLayout, files: list[CopyFile]) -> list[Path]:
    """Copy `copyFiles` entries (sources relative to the workspace root once loaded); `{site-packages}` expands.

    Loading checked every source; a source gone or moved outside the workspace since then, or a target
    outside the runtime, is still refused here.
    """
    prefix, site = layout.prefix, layout.platform.site_packages(layout.version)
    written = []
    for entry in files:
        source = copy_source(workspace_root, entry)
        if not source.exists():
            raise BuildError(f"copyFiles: {entry.from_} does not exist in workspace {workspace_root}")
        unsafe = unsafe_link(source, workspace_root)
        if unsafe:
            raise BuildError(f"copyFiles: {entry.from_} {unsafe}")
        target = prefix / entry.to.replace(SITE_PACKAGES, site).lstrip("/")
        if not target.resolve().is_relative_to(prefix.resolve()):
            raise BuildError(f"copyFiles: target {entry.to} is outside the runtime")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
        written.append(target)
    return written
