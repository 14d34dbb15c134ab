"""What an unpacked runtime holds: its distributions, their modules, extension modules, files and wheel names,
and every native file, each with the distribution that installed it."""

from __future__ import annotations

import configparser
import csv
import email.parser
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from packaging.utils import canonicalize_name

from runenv.build.manifest import MANIFEST_NAME
from runenv.build.verify.binaries import Format, exports_symbol, sniff
from runenv.compat import tomllib
from runenv.platforms import Platform, RuntimeLayout

INTERPRETER = "(interpreter)"  # owner of the interpreter's own files
UNRECORDED = "(unrecorded)"  # owner of files in site-packages that no RECORD lists (copyFiles, …)
# setuptools' `distutils-precedence.pth` is the one start-up hook a runtime is expected to have: the distutils
# shim needs setuptools.
EXPECTED_HOOKS = {("setuptools", "distutils-precedence.pth")}
_NATIVE_NAMES: dict[str, tuple[str, ...]] = {
    "linux": (".so",),
    "macos": (".so", ".dylib"),
    "windows": (".pyd", ".dll", ".so", ".dylib"),
}
FORMAT_OF = {"linux": "elf", "macos": "macho", "windows": "pe"}


@dataclass(frozen=True)
class Distribution:
    """One installed distribution: its top-level modules, native extension modules, files and wheel name."""

    name: str  # PEP 503 normalised
    version: str
    modules: tuple[str, ...]
    console_script: str | None
    weight: int = 0  # size of its RECORD: a rough guide to how long its imports take (heavy ones start first)
    files: tuple[str, ...] = ()  # from RECORD, relative to the runtime prefix (POSIX)
    wheel: str | None = None  # the wheel file it was installed from (manifest), or one named from its WHEEL tags
    requires: tuple[str, ...] = ()  # Requires-Dist
    extensions: dict[str, str] = field(default_factory=dict)  # dotted module name: file (relative to the prefix)


def _metadata(dist_info: Path) -> tuple[str, str, tuple[str, ...]]:
    text = (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace")
    headers = email.parser.HeaderParser().parsestr(text)
    stem_name, _, stem_version = dist_info.name.removesuffix(".dist-info").partition("-")
    name = canonicalize_name(headers.get("Name") or stem_name)
    return name, headers.get("Version") or stem_version, tuple(headers.get_all("Requires-Dist") or ())


def _module_of(path: str) -> str | None:
    """The top-level module a RECORD path belongs to, if it is one."""
    parts = PurePosixPath(path).parts
    if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".data")):
        return None
    if len(parts) > 1:
        name = parts[0]
    elif parts[0].endswith(".py"):
        name = parts[0][:-3]
    elif parts[0].endswith((".so", ".pyd")):
        name = parts[0].split(".")[0]
    else:
        return None
    return name if name.isidentifier() and not name.startswith("__") else None


def _is_installed(site_packages: Path, module: str) -> bool:
    """A package directory or a module file (`.py`, extension) for the dotted name exists in site-packages."""
    path = site_packages.joinpath(*module.split("."))
    return path.is_dir() or any(path.parent.glob(f"{path.name}.*"))


def top_level_modules(dist_info: Path, site_packages: Path, name: str, record: list[str]) -> tuple[str, ...]:
    """From top_level.txt (names that are installed), else RECORD, else a module named like the distribution."""
    top_level = dist_info / "top_level.txt"
    if top_level.is_file():
        # top_level.txt may name modules the wheel does not ship (pyarrow lists `__dummy__`).
        names = [line.strip().replace("/", ".") for line in top_level.read_text().splitlines()]
        return tuple(
            sorted(
                {
                    n
                    for n in names
                    if n and all(p.isidentifier() for p in n.split(".")) and _is_installed(site_packages, n)
                }
            )
        )
    if record:
        return tuple(sorted({m for m in map(_module_of, record) if m}))
    guess = name.replace("-", "_")
    exists = (site_packages / guess).is_dir() or (site_packages / f"{guess}.py").is_file()
    return (guess,) if exists else ()


def console_script(dist_info: Path) -> str | None:
    """The first (by name) console script a distribution declares."""
    entry_points = dist_info / "entry_points.txt"
    if not entry_points.is_file():
        return None
    parser = configparser.RawConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(entry_points.read_text(encoding="utf-8"))
    except configparser.Error:
        return None
    names = sorted(parser.options("console_scripts")) if parser.has_section("console_scripts") else []
    return names[0] if names else None


def _record(dist_info: Path) -> list[str]:
    record = dist_info / "RECORD"
    if not record.is_file():
        return []
    with record.open(newline="", encoding="utf-8", errors="replace") as fh:
        return [row[0] for row in csv.reader(fh) if row and row[0]]


def wheel_name_from_tags(dist_info: Path, name: str, version: str) -> str | None:
    """`name-version[-build]-py-abi-plat.whl` rebuilt from the WHEEL file's `Tag` (and `Build`) lines."""
    wheel = dist_info / "WHEEL"
    if not wheel.is_file():
        return None
    headers = email.parser.HeaderParser().parsestr(wheel.read_text(encoding="utf-8", errors="replace"))
    tags = [t.split("-") for t in headers.get_all("Tag") or () if t.count("-") == 2]
    if not tags:
        return None
    parts = [".".join(dict.fromkeys(t[i] for t in tags)) for i in range(3)]
    build = [headers["Build"]] if headers.get("Build") else []
    return "-".join([name.replace("-", "_"), version, *build, *parts]) + ".whl"


def manifest_wheels(prefix: Path) -> dict[str, str]:
    """Wheel file names by distribution, as the manifest inside the runtime records them."""
    path = prefix / MANIFEST_NAME
    try:
        packages = tomllib.loads(path.read_text(encoding="utf-8")).get("packages", [])
    except (OSError, ValueError):
        return {}
    return {canonicalize_name(p["name"]): p["wheel"] for p in packages if p.get("wheel") and p.get("name")}


def manifest_skipped(prefix: Path) -> dict[str, str]:
    """Packages the build left out on purpose (name: reason), as the manifest inside the runtime records them."""
    try:
        skipped = tomllib.loads((prefix / MANIFEST_NAME).read_text(encoding="utf-8")).get("skipped", [])
    except (OSError, ValueError):
        return {}
    return {canonicalize_name(s["name"]): s.get("reason", "") for s in skipped if s.get("name")}


def extension_module(relative: PurePosixPath, platform: Platform) -> str | None:
    """The dotted module name of a file in site-packages when its name is an extension module's, else None."""
    suffix = platform.extension_suffix
    if relative.suffix != suffix or relative.parts[0].endswith((".dist-info", ".data", ".libs")):
        return None
    parts = [*relative.parts[:-1], relative.name.split(".")[0]]
    if parts[-1] == "__init__":
        parts.pop()
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def _is_tagged(name: str) -> bool:
    """`mod.cpython-312-x86_64-linux-gnu.so`, `mod.abi3.so`, `mod.cp312-win_amd64.pyd`: not a plain library name."""
    return name.count(".") >= 2


def _extensions(prefix: Path, site: str, files: list[str], platform: Platform) -> dict[str, str]:
    found = {}
    for file in files:
        if not file.startswith(site + "/"):
            continue
        relative = PurePosixPath(file[len(site) + 1 :])
        module = extension_module(relative, platform)
        if module is None:
            continue
        # A plain `libfoo.so` is a shared library unless it defines its module's init function.
        if platform.is_windows or _is_tagged(relative.name) or sniff(prefix / file) != "elf":
            found[module] = file
        elif exports_symbol(prefix / file, f"PyInit_{module.rsplit('.', 1)[-1]}"):
            found[module] = file
    return found


def find_distributions(layout: RuntimeLayout) -> list[Distribution]:
    """Every `*.dist-info` in the runtime's site-packages, sorted by name."""
    prefix, site = layout.prefix, layout.platform.site_packages(layout.version)
    site_packages = layout.site_packages
    wheels = manifest_wheels(prefix)
    found = []
    for dist_info in sorted(site_packages.glob("*.dist-info")):
        if not (dist_info / "METADATA").is_file():
            continue
        name, version, requires = _metadata(dist_info)
        record = _record(dist_info)
        files = sorted({posixpath.normpath(f"{site}/{path}") for path in record})
        found.append(
            Distribution(
                name,
                version,
                top_level_modules(dist_info, site_packages, name, record),
                console_script(dist_info),
                (dist_info / "RECORD").stat().st_size if record else 0,
                tuple(f for f in files if not f.startswith("..")),
                wheels.get(name) or wheel_name_from_tags(dist_info, name, version),
                requires,
                _extensions(prefix, site, files, layout.platform),
            )
        )
    return sorted(found, key=lambda d: d.name)


def is_startup_hook(site_relative: str) -> bool:
    """A file site.py runs at every interpreter start: a `.pth`, `sitecustomize` or `usercustomize` directly in
    site-packages."""
    name = site_relative
    return "/" not in name and (name.endswith(".pth") or name in ("sitecustomize.py", "usercustomize.py"))


def startup_hooks(dists: list[Distribution], platform: Platform, python_version: str) -> list[str]:
    """Warnings for `.pth` files and `sitecustomize`/`usercustomize` modules a distribution installs."""
    site = platform.site_packages(python_version) + "/"
    warnings = []
    for dist in dists:
        for file in dist.files:
            name = file[len(site) :] if file.startswith(site) else ""
            if name and is_startup_hook(name) and (dist.name, name) not in EXPECTED_HOOKS:
                warnings.append(
                    f"distribution {dist.name!r} installs {name}: code that runs at every start of the "
                    f"{platform.key} interpreter (also during verify)"
                )
    return warnings


@dataclass(frozen=True)
class NativeCandidate:
    """A file the static checks read: where it is, who installed it, and whether the interpreter brought it."""

    path: Path
    relative: str  # POSIX, relative to the prefix
    owner: str
    from_package: bool  # installed by a distribution (or into site-packages), not part of the interpreter


def native_files(layout: RuntimeLayout, dists: list[Distribution]) -> list[NativeCandidate]:
    """Every file the target loads as native code: named like a shared library of its OS, executable files of its
    format, and on Windows `.exe` files outside site-packages (launchers inside packages are data)."""
    prefix, platform = layout.prefix, layout.platform
    site = platform.site_packages(layout.version) + "/"
    owners = {file: dist.name for dist in dists for file in dist.files}
    names = _NATIVE_NAMES[platform.os]
    expected: Format = FORMAT_OF[platform.os]  # type: ignore[assignment]
    found = []
    pending = [(str(prefix), "")]
    while pending:
        directory, relative_dir = pending.pop()
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                relative = relative_dir + entry.name
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, relative + "/"))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue  # symlinks: their targets are checked
                in_site = relative.startswith(site)
                lower = entry.name.lower()
                named = lower.endswith(names) or (platform.os == "linux" and ".so." in lower)
                named = named or (platform.is_windows and lower.endswith(".exe") and not in_site)
                if not named and (
                    platform.is_windows or not entry.stat().st_mode & 0o111 or sniff(Path(entry.path)) != expected
                ):
                    continue
                owner = owners.get(relative) or (UNRECORDED if in_site else INTERPRETER)
                found.append(NativeCandidate(Path(entry.path), relative, owner, owner != INTERPRETER))
    return sorted(found, key=lambda c: c.relative)
