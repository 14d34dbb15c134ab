"""Which shared libraries a target platform provides itself, and the newest symbol versions and OS a runtime may
need there: the manylinux policy for `build.manylinux`, macOS `/usr/lib` and `/System`, Windows system DLLs."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from runenv.platforms import Platform

# uv's default deployment target for both macOS architectures when `build.macosx` is not set.
DEFAULT_MACOSX = "13.0"

_LINUX_LOADERS = re.compile(r"^ld-linux(-x86-64|-aarch64)?\.so\.\d$")
_MACOS_SYSTEM = ("/usr/lib/", "/System/")
_WINDOWS_API_SETS = ("api-ms-win-", "ext-ms-")
# DLLs every supported Windows ships in System32 (KnownDLLs and the common Win32 and CRT libraries).
WINDOWS_SYSTEM_DLLS = frozenset(
    """
advapi32 bcrypt bcryptprimitives cabinet cfgmgr32 comctl32 comdlg32 crypt32 cryptbase cryptnet cryptsp
d2d1 d3d11 d3d12 d3d9 d3dcompiler_47 dbghelp dcomp dnsapi dwmapi dwrite dxgi dxva2 fwpuclnt gdi32 gdiplus glu32
hid imagehlp imm32 iphlpapi kernel32 kernelbase mf mfplat mfreadwrite mpr msacm32 mscoree msi msimg32 msvcrt
mswsock ncrypt netapi32 normaliz ntdll ole32 oleacc oleaut32 opengl32 pdh powrprof propsys psapi rasapi32 rpcrt4
rstrtmgr secur32 sechost setupapi shcore shell32 shlwapi srvcli sspicli tdh ucrtbase urlmon user32 userenv usp10
uxtheme version winhttp wininet winmm winspool wintrust wldap32 wlanapi ws2_32 wsock32 wtsapi32 xinput1_4
""".split()
)


@dataclass(frozen=True)
class ManylinuxPolicy:
    """One manylinux policy: its name, system libraries, and per symbol family (GLIBC, GLIBCXX, …) the versions."""

    name: str
    libraries: frozenset[str]
    symbol_versions: dict[str, frozenset[str]]

    def too_new(self, version: str) -> bool:
        """Whether a needed symbol version (e.g. `GLIBC_2.34`) is of a family the policy knows but not in it."""
        family, _, number = version.partition("_")
        allowed = self.symbol_versions.get(family)
        return allowed is not None and number not in allowed


@functools.cache
def _manylinux_policies() -> tuple[dict[str, Any], ...]:
    # auditwheel's policy file is the reference the manylinux images and PyPI's checks follow.
    text = resources.files("auditwheel.policy").joinpath("manylinux-policy.json").read_text(encoding="utf-8")
    return tuple(p for p in json.loads(text) if p["name"].startswith("manylinux_"))


def manylinux_policy(floor: str, arch: str) -> ManylinuxPolicy:
    """The newest policy at or below the glibc floor `2_X` for `arch`."""
    minor = int(floor.split("_")[1])

    def glibc_minor(policy: dict[str, Any]) -> int:
        return int(policy["name"].split("_")[2])

    fitting = [p for p in _manylinux_policies() if glibc_minor(p) <= minor and arch in p["symbol_versions"]]
    policy = max(fitting, key=glibc_minor) if fitting else min(_manylinux_policies(), key=glibc_minor)
    versions = policy["symbol_versions"].get(arch, {})
    return ManylinuxPolicy(
        policy["name"], frozenset(policy["lib_whitelist"]), {k: frozenset(v) for k, v in versions.items()}
    )


def is_system_library(platform: Platform, name: str, policy: ManylinuxPolicy | None = None) -> bool:
    """Whether the target provides the library `name` (a soname, install name or DLL name) itself."""
    if platform.os == "linux":
        return bool(_LINUX_LOADERS.match(name)) or (policy is not None and name in policy.libraries)
    if platform.os == "macos":
        return name.startswith(_MACOS_SYSTEM)
    lower = name.lower()
    return lower.startswith(_WINDOWS_API_SETS) or lower.removesuffix(".dll") in WINDOWS_SYSTEM_DLLS


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())
