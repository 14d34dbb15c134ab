"""Checks that need no execution: every native file's format and architecture, the shared libraries it needs,
and the glibc / macOS floors, judged for the target platform from any host."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import runenv
from runenv.build.verify.binaries import Format, NativeFile, read_native
from runenv.build.verify.discovery import FORMAT_OF, NativeCandidate
from runenv.build.verify.policy import (
    DEFAULT_MACOSX,
    ManylinuxPolicy,
    is_system_library,
    manylinux_policy,
    version_tuple,
)
from runenv.build.verify.report import Failure
from runenv.cache import tool_versions
from runenv.files import write_text_atomic
from runenv.platforms import Platform, RuntimeLayout

PARSED_FORMAT = 1  # bump when read_native reads more or other facts


ARCH_NAMES = {"x86_64": {"linux": "x86-64", "macos": "x86_64", "windows": "AMD64"}, "aarch64": {"macos": "arm64"}}


@dataclass(frozen=True)
class Floors:
    """What the target promises: the glibc floor (`build.manylinux`) and the macOS floor (`build.macosx`)."""

    manylinux: str
    macosx: str | None = None


def _arch_name(arch: str, os_name: str) -> str:
    return ARCH_NAMES.get(arch, {}).get(os_name, arch)


def module_name(relative: str, site: str) -> str:
    """A native file's dotted name as the seed's allowlists write it (`numpy.core._umath_tests`), else its path."""
    if not relative.startswith(site + "/"):
        return relative
    path = PurePosixPath(relative[len(site) + 1 :])
    return ".".join([*path.parts[:-1], path.name.split(".")[0]])


class Resolver:
    """Finds the shared libraries native files need, the way the target's loader would, inside the prefix."""

    def __init__(self, prefix: Path, platform: Platform, python: Path, policy: ManylinuxPolicy | None) -> None:
        self.prefix, self.platform, self.policy = prefix, platform, policy
        self.python, self.exe_dir = python, python.parent
        self.names: dict[str, list[Path]] = {}  # lower-case file name: paths (PE: packages add DLL directories)
        self.exe_rpaths: list[Path] = []
        self.loaded: set[str] = set()  # sonames the interpreter loads before any extension

    def index(self, files: Iterable[Path], interpreter: NativeFile | None) -> None:
        for path in files:
            self.names.setdefault(path.name.lower(), []).append(path)
        if interpreter is not None and interpreter.format is not None:
            self.exe_rpaths = self._rpath_dirs(self.python, interpreter)
            self.loaded = {n.name for n in interpreter.needed if self.find(self.python, n.name, interpreter)}

    def _rpath_dirs(self, path: Path, native: NativeFile) -> list[Path]:
        dirs = []
        for entry in native.rpaths:
            expanded = entry.replace("${ORIGIN}", "$ORIGIN").replace("$ORIGIN", str(path.parent))
            expanded = expanded.replace("@loader_path", str(path.parent)).replace("@executable_path", str(self.exe_dir))
            dirs.append(Path(os.path.normpath(expanded)))
        return dirs

    def _inside(self, path: Path) -> bool:
        return path.is_relative_to(self.prefix) and (path.is_file() or path.is_symlink())

    def find(self, path: Path, name: str, native: NativeFile) -> Path | None:
        """Where the loader finds `name` for the file at `path`, when it is inside the runtime."""
        if self.platform.os == "linux":
            if "/" in name:
                candidate = Path(os.path.normpath(name.replace("$ORIGIN", str(path.parent))))
                return candidate if self._inside(candidate) else None
            # A bundled library's own needs resolve beside it: the loader already found it there through the
            # RUNPATH of the file that needs it (auditwheel's `<pkg>.libs/` layout), and finds them by soname.
            beside = [path.parent] if path.name.startswith("lib") else []
            for directory in [*self._rpath_dirs(path, native), *self.exe_rpaths, *beside]:
                if self._inside(directory / name):
                    return directory / name
            return None
        if self.platform.os == "macos":
            if name.startswith("@rpath/"):
                rest = name[len("@rpath/") :]
                dirs = [*self._rpath_dirs(path, native), *self.exe_rpaths]
                return next((d / rest for d in dirs if self._inside(d / rest)), None)
            candidate = Path(
                os.path.normpath(
                    name.replace("@loader_path", str(path.parent)).replace("@executable_path", str(self.exe_dir))
                )
            )
            return candidate if self._inside(candidate) else None
        lower = name.lower()
        for directory in (path.parent, self.prefix, self.prefix / "DLLs"):
            if self._inside(directory / name):
                return directory / name
        return next(iter(self.names.get(lower, [])), None)  # a DLL directory a package adds at import time

    def missing(self, path: Path, native: NativeFile) -> list[str]:
        """Needed libraries that are neither in the runtime nor provided by the target system."""
        return [
            n.name
            for n in native.needed
            if not n.optional
            and n.name not in self.loaded
            and not is_system_library(self.platform, n.name, self.policy)
            and self.find(path, n.name, native) is None
        ]


def _where(native: NativeFile, platform: Platform) -> str:
    if platform.os == "linux":
        return f"RUNPATH {':'.join(native.rpaths)}" if native.rpaths else "no RUNPATH"
    if platform.os == "macos":
        return f"LC_RPATH {':'.join(native.rpaths)}" if native.rpaths else "no LC_RPATH"
    return "the DLL's directory, python.exe's, DLLs\\ and the runtime's DLLs"


def file_problems(
    candidate: NativeCandidate, native: NativeFile, platform: Platform, resolver: Resolver, floors: Floors
) -> list[str]:
    """Every way one native file does not fit the target (format and architecture for every file; libraries and
    floors for files the packages brought)."""
    os_name = platform.os
    want = _arch_name(platform.arch, os_name)
    if native.error:
        return [native.error]
    if platform.arch not in native.archs:
        found = ", ".join(_arch_name(a, os_name) for a in native.archs) or "unknown"
        universal = " (universal file without it)" if len(native.archs) > 1 else ""
        return [f"architecture {found}{universal}, expected {want} for {platform.key}"]
    if not candidate.from_package:
        return []
    problems = []
    for name in resolver.missing(candidate.path, native):
        system = f"a {floors_name(platform, floors)} system library" if os_name != "macos" else "in /usr/lib or /System"
        problems.append(f"needs {name}, which is neither in the runtime ({_where(native, platform)}) nor {system}")
    if os_name == "linux" and resolver.policy is not None:
        for library, version in native.versions:
            inside = resolver.find(candidate.path, library, native) is not None
            if not inside and resolver.policy.too_new(version):
                problems.append(
                    f"needs symbol version {version} from {library}, newer than {resolver.policy.name} "
                    f"(build.manylinux {floors.manylinux}) allows"
                )
    if os_name == "macos" and native.min_os:
        floor = floors.macosx or DEFAULT_MACOSX
        if version_tuple(native.min_os) > version_tuple(floor):
            problems.append(f"needs macOS {native.min_os}, above build.macosx {floor}")
    return problems


def floors_name(platform: Platform, floors: Floors) -> str:
    return f"manylinux_{floors.manylinux}" if platform.os == "linux" else "Windows"


class ParsedFiles:
    """What native files said about themselves, kept by their content at `<cache>/native/<key>.json` (key: the
    file's sha256, the format and architecture asked for, PARSED_FORMAT): a file is parsed once, whichever
    runtime or platform ships it. Only what parsed without error is kept; an entry that does not read back
    is parsed again."""

    def __init__(self, cache_root: Path, digests: dict[str, str]) -> None:
        self.directory = cache_root / "native"
        self.digests = digests  # path relative to the prefix → sha256 of the file

    def _entry(self, candidate: NativeCandidate, expected: Format, arch: str) -> Path | None:
        digest = self.digests.get(candidate.relative)
        if digest is None:
            return None
        parsers = tool_versions("pyelftools", "macholib", "pefile")  # another version may read files otherwise
        facts = f"{PARSED_FORMAT} {runenv.__version__} {parsers} {digest} {expected} {arch}"
        key = hashlib.sha256(facts.encode()).hexdigest()
        return self.directory / f"{key}.json"

    def read(self, candidate: NativeCandidate, expected: Format, arch: str) -> NativeFile:
        entry = self._entry(candidate, expected, arch)
        if entry is not None:
            try:
                return NativeFile.from_json(json.loads(entry.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError):
                pass
        native = read_native(candidate.path, expected, arch)
        if entry is not None and native.error is None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                write_text_atomic(entry, json.dumps(native.as_json()))
            except OSError:
                pass  # the next verification parses it again
        return native


def check_native_files(
    layout: RuntimeLayout,
    candidates: list[NativeCandidate],
    floors: Floors,
    workers: int = 4,
    parsed_files: ParsedFiles | None = None,
) -> list[Failure]:
    """One failure per problem of every native file; files are parsed in parallel (or found in `parsed_files`)."""
    platform, python = layout.platform, layout.python
    expected: Format = FORMAT_OF[platform.os]  # type: ignore[assignment]
    policy = manylinux_policy(floors.manylinux, platform.arch) if platform.os == "linux" else None
    resolver = Resolver(layout.prefix, platform, python, policy)

    def parse(candidate: NativeCandidate) -> NativeFile:
        if parsed_files is not None:
            return parsed_files.read(candidate, expected, platform.arch)
        return read_native(candidate.path, expected, platform.arch)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        parsed = list(pool.map(parse, candidates))
    by_path = dict(zip((c.path for c in candidates), parsed, strict=True))
    resolver.index((c.path for c in candidates), by_path.get(python.resolve()) or by_path.get(python))
    site = platform.site_packages(layout.version)
    failures = []
    for candidate, native in zip(candidates, parsed, strict=True):
        for problem in file_problems(candidate, native, platform, resolver, floors):
            failures.append(
                Failure(
                    candidate.owner,
                    module_name(candidate.relative, site),
                    "static",
                    f"{candidate.relative}: {problem}",
                    problem,
                    candidate.relative,
                    "static",
                )
            )
    return failures
