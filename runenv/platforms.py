"""The one table of platform facts: PBS triples, uv targets, layout of a runtime prefix."""

from __future__ import annotations

import platform as _platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

PlatformKey = Literal["linux-x64", "linux-aarch64", "macosx-x64", "macosx-aarch64", "windows-x64"]
PLATFORM_KEYS: tuple[PlatformKey, ...] = get_args(PlatformKey)

DEFAULT_MANYLINUX = "2_28"
UV_MANYLINUX_MINORS = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)  # glibc floors uv resolves for


def minor_of(version: str) -> str:
    """`3.12` of `3.12.10`: the X.Y that names directories, cache tags and markers."""
    return ".".join(version.split(".")[:2])


def major_minor(version: str) -> tuple[int, int]:
    """(3, 12) of `3.12.10`."""
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


@dataclass(frozen=True)
class Platform:
    """Facts about one target platform."""

    key: PlatformKey
    os: Literal["linux", "macos", "windows"]
    arch: Literal["x86_64", "aarch64"]
    pbs_triple: str
    uv_platform: str

    @property
    def is_windows(self) -> bool:
        return self.os == "windows"

    @property
    def oci_platform(self) -> dict[str, str]:
        """The `platform` object of an OCI image index entry (`os`, `architecture`)."""
        oci_os = "darwin" if self.os == "macos" else self.os
        return {"architecture": "arm64" if self.arch == "aarch64" else "amd64", "os": oci_os}

    @property
    def scripts_dir(self) -> str:
        return "Scripts" if self.is_windows else "bin"

    @property
    def exe_suffix(self) -> str:
        """What the names of programs end with (`.exe` on Windows)."""
        return ".exe" if self.is_windows else ""

    @property
    def extension_suffix(self) -> str:
        """The file suffix of native extension modules (`.pyd` on Windows)."""
        return ".pyd" if self.is_windows else ".so"

    def site_packages(self, python_version: str) -> str:
        """Relative path of site-packages inside the runtime prefix."""
        if self.is_windows:
            return "Lib/site-packages"
        return f"lib/python{minor_of(python_version)}/site-packages"

    def stdlib(self, python_version: str) -> str:
        if self.is_windows:
            return "Lib"
        return f"lib/python{minor_of(python_version)}"

    def include_dir(self, python_version: str) -> str:
        """Relative path of the C headers directory (where wheels' `.data/headers` go)."""
        return "Include" if self.is_windows else f"include/python{minor_of(python_version)}"

    def python_exe(self, python_version: str) -> str:
        """Relative path of the interpreter executable inside the runtime prefix."""
        if self.is_windows:
            return "python.exe"
        return f"bin/python{python_version.split('.')[0]}"

    def marker_environment(self, python_version: str) -> dict[str, str]:
        """PEP 508 marker values of CPython `python_version` on this platform, for evaluating requirements."""
        system = {"linux": "Linux", "macos": "Darwin", "windows": "Windows"}[self.os]
        machine = {("windows", "x86_64"): "AMD64", ("macos", "aarch64"): "arm64"}.get((self.os, self.arch), self.arch)
        return {
            "implementation_name": "cpython",
            "implementation_version": python_version,
            "os_name": "nt" if self.is_windows else "posix",
            "platform_machine": machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": system,
            "platform_version": "",
            "python_full_version": python_version,
            "python_version": minor_of(python_version),
            "sys_platform": {"linux": "linux", "macos": "darwin", "windows": "win32"}[self.os],
        }

    def uv_target(self, manylinux: str = DEFAULT_MANYLINUX) -> str:
        """The `--python-platform` value for uv; Linux carries the glibc floor uv knows nearest below `manylinux`."""
        if self.os != "linux":
            return self.uv_platform
        minor = int(manylinux.split("_")[1])
        known = max((m for m in UV_MANYLINUX_MINORS if m <= minor), default=UV_MANYLINUX_MINORS[0])
        return f"{self.arch}-manylinux_2_{known}"


@dataclass(frozen=True)
class RuntimeLayout:
    """One runtime prefix as its platform lays it out for one Python version: where each part is, so callers
    ask the layout instead of branching on the OS."""

    prefix: Path
    platform: Platform
    version: str

    @property
    def python(self) -> Path:
        return self.prefix / self.platform.python_exe(self.version)

    @property
    def site_packages(self) -> Path:
        return self.prefix / self.platform.site_packages(self.version)

    @property
    def scripts(self) -> Path:
        return self.prefix / self.platform.scripts_dir

    @property
    def include(self) -> Path:
        return self.prefix / self.platform.include_dir(self.version)

    @property
    def path_dirs(self) -> list[Path]:
        """Directories to put first on PATH: the scripts directory, and on Windows the prefix (python.exe)."""
        return [self.scripts, self.prefix] if self.platform.is_windows else [self.scripts]

    def script(self, name: str) -> Path:
        """Where the console script `name` is installed."""
        return self.scripts / f"{name}{self.platform.exe_suffix}"

    def is_python(self, command: str) -> bool:
        """Whether `command` names the interpreter (`python`, `python3`, `python3.12`, with `.exe` on Windows)."""
        names = ("python", f"python{major_minor(self.version)[0]}", f"python{minor_of(self.version)}")
        return command.removesuffix(self.platform.exe_suffix) in names


PLATFORMS: dict[str, Platform] = {
    "linux-x64": Platform("linux-x64", "linux", "x86_64", "x86_64-unknown-linux-gnu", "x86_64-manylinux_2_28"),
    "linux-aarch64": Platform(
        "linux-aarch64", "linux", "aarch64", "aarch64-unknown-linux-gnu", "aarch64-manylinux_2_28"
    ),
    "macosx-x64": Platform("macosx-x64", "macos", "x86_64", "x86_64-apple-darwin", "x86_64-apple-darwin"),
    "macosx-aarch64": Platform("macosx-aarch64", "macos", "aarch64", "aarch64-apple-darwin", "aarch64-apple-darwin"),
    "windows-x64": Platform("windows-x64", "windows", "x86_64", "x86_64-pc-windows-msvc", "x86_64-pc-windows-msvc"),
}


def get_platform(key: str) -> Platform:
    """The platform for `key`; raises UsageError naming the valid keys."""
    from runenv.errors import UsageError

    try:
        return PLATFORMS[key]
    except KeyError:
        raise UsageError(f"unknown platform {key!r}", hint=f"valid platforms: {', '.join(PLATFORM_KEYS)}") from None


def host_platform_key() -> PlatformKey | None:
    """The key of the machine runenv runs on, or None when it is not one of the five."""
    machine = _platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "aarch64", "arm64": "aarch64"}.get(machine)
    os_name = {"linux": "linux", "darwin": "macosx", "win32": "windows"}.get(sys.platform)
    key = f"{os_name}-{arch}"
    return PLATFORMS[key].key if key in PLATFORMS else None


def is_host_runnable(key: str) -> bool:
    """Whether binaries built for `key` run on this machine."""
    return key == host_platform_key()
