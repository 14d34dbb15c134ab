"""The one table of platform facts: PBS triples, uv targets, layout of a runtime prefix."""

from __future__ import annotations

import platform as _platform
import sys
from dataclasses import dataclass
from typing import Literal, get_args

PlatformKey = Literal["linux-x64", "linux-aarch64", "macosx-x64", "macosx-aarch64", "windows-x64"]
PLATFORM_KEYS: tuple[PlatformKey, ...] = get_args(PlatformKey)

DEFAULT_MANYLINUX = "2_28"
UV_MANYLINUX_MINORS = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)  # glibc floors uv resolves for


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

    def site_packages(self, python_version: str) -> str:
        """Relative path of site-packages inside the runtime prefix."""
        if self.is_windows:
            return "Lib/site-packages"
        major, minor = python_version.split(".")[:2]
        return f"lib/python{major}.{minor}/site-packages"

    def stdlib(self, python_version: str) -> str:
        if self.is_windows:
            return "Lib"
        major, minor = python_version.split(".")[:2]
        return f"lib/python{major}.{minor}"

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
            "python_version": ".".join(python_version.split(".")[:2]),
            "sys_platform": {"linux": "linux", "macos": "darwin", "windows": "win32"}[self.os],
        }

    def uv_target(self, manylinux: str = DEFAULT_MANYLINUX) -> str:
        """The `--python-platform` value for uv; Linux carries the glibc floor uv knows nearest below `manylinux`."""
        if self.os != "linux":
            return self.uv_platform
        minor = int(manylinux.split("_")[1])
        known = max((m for m in UV_MANYLINUX_MINORS if m <= minor), default=UV_MANYLINUX_MINORS[0])
        return f"{self.arch}-manylinux_2_{known}"


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
