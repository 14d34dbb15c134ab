"""Deep imports, static checks (format, architecture, libraries, glibc / macOS floors), the dependency closure,
start-up hooks and seed-format allowlists, over real runtime prefixes with real native files."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest

from runenv.build.verify import VerifySettings, allowances, check_prefix
from runenv.build.verify.allowlist import names_distribution
from runenv.build.verify.binaries import NativeFile
from runenv.build.verify.closure import check_closure
from runenv.build.verify.discovery import Distribution, NativeCandidate
from runenv.build.verify.static import Floors, ParsedFiles
from runenv.cache import sha256_file
from runenv.platforms import RuntimeLayout, get_platform
from tests.helpers import HOST
from tests.helpers.index import build_wheel
from tests.helpers.native import (
    EXT_SUFFIX,
    NEW_GLIBC_CALL,
    build_extension,
    build_library,
    fat,
    macho,
    pe_file,
)
from tests.helpers.runtime_prefix import PY_MINOR, PY_VERSION, install_wheel

LINUX = get_platform("linux-x64")
STATIC_ONLY = VerifySettings(run=False)
TAG = f"cp{PY_MINOR.replace('.', '')}-cp{PY_MINOR.replace('.', '')}-manylinux_2_17_x86_64"


def _install(prefix: Path, tmp: Path, name: str, files: dict[str, str | bytes], **kwargs) -> None:
    (tmp / "wheels").mkdir(exist_ok=True)
    install_wheel(prefix, build_wheel(tmp / "wheels", name, "1.0", files, **kwargs))


def _read(files: dict[str, Path]) -> dict[str, bytes]:
    return {path: file.read_bytes() for path, file in files.items()}


def _found(report, kind: str | None = None) -> set[tuple[str, str, str]]:
    return {(f.kind, f.distribution, f.module) for f in report.failures if kind is None or f.kind == kind}


def test_every_extension_module_is_imported_and_a_broken_submodule_names_module_file_and_distribution(
    runtime_prefix, tmp_path
):
    native = tmp_path / "native"
    helper = build_library(native / "lib", "libhelper.so")  # a plain library: checked, never imported
    good = build_extension(native / "good", "deeppkg._good", needs=(helper,), rpath="$ORIGIN")
    files = {
        "deeppkg/__init__.py": "",
        f"deeppkg/_good{EXT_SUFFIX}": good.read_bytes(),
        "deeppkg/libhelper.so": helper.read_bytes(),
        "deeppkg/sub/__init__.py": "",
        f"deeppkg/sub/_ext{EXT_SUFFIX}": b"garbage, not a shared object\n" * 8,
    }
    _install(runtime_prefix, tmp_path, "deeppkg", files, tag=TAG)
    report = check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION))
    imports = [f for f in report.failures if f.distribution == "deeppkg" and f.kind == "import"]
    assert [(f.module, f.file) for f in imports] == [
        ("deeppkg.sub._ext", f"lib/python{PY_MINOR}/site-packages/deeppkg/sub/_ext{EXT_SUFFIX}")
    ]
    assert "invalid ELF header" in imports[0].error
    line = imports[0].describe("linux-x64")
    assert "'deeppkg.sub._ext'" in line and "'deeppkg'" in line and f"_ext{EXT_SUFFIX}" in line and "\n" not in line
    # deeppkg, deeppkg._good, deeppkg.sub._ext from deeppkg; the fixture's three top-level modules
    assert report.count("imports", "modules") == 3 + 3 and report.count("imports", "extensionModules") == 2 + 1
    static = {(f.module, f.error.split(": ", 1)[1]) for f in report.failures if f.kind == "static"}
    assert static == {("deeppkg.sub._ext", "not an ELF file"), ("brokenext", "not an ELF file")}


def test_extension_modules_of_a_package_that_runs_threads_or_fails_each_report_their_own_result(
    runtime_prefix, tmp_path
):
    native = tmp_path / "native"
    ext = build_extension(native / "a", "x._fine").read_bytes()
    threads = "import threading, time\nthreading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
    _install(
        runtime_prefix,
        tmp_path,
        "threadedpkg",
        {"threadedpkg/__init__.py": threads, f"threadedpkg/_fine{EXT_SUFFIX}": ext},
        tag=TAG,
    )
    broken = {"failpkg/__init__.py": "raise RuntimeError('failpkg init')\n", f"failpkg/_fine{EXT_SUFFIX}": ext}
    _install(runtime_prefix, tmp_path, "failpkg", broken, tag=TAG)
    report = check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION))
    failed = {f.module: f.error for f in report.failures if f.kind == "import"}
    assert failed["failpkg"] == failed["failpkg._fine"] == "RuntimeError: failpkg init"
    assert "threadedpkg" not in failed and "threadedpkg._fine" not in failed


def test_missing_library_and_too_new_glibc_symbol_fail_and_the_floor_or_allowlist_lets_them_pass(
    runtime_prefix, tmp_path
):
    native = tmp_path / "native"
    missing = build_library(native / "elsewhere", "libmissing.so")
    new = build_library(native / "libs", "libnew.so", calls=NEW_GLIBC_CALL)
    built = {
        f"needsmissing/_ext{EXT_SUFFIX}": build_extension(native / "m", "needsmissing._ext", needs=(missing,)),
        f"newglibc/_ext{EXT_SUFFIX}": build_extension(
            native / "n", "newglibc._ext", needs=(new,), rpath="$ORIGIN/../newglibc.libs"
        ),
        "newglibc.libs/libnew.so": new,
    }
    _install(runtime_prefix, tmp_path, "needsmissing", {"needsmissing/__init__.py": "", **_read(built)}, tag=TAG)
    report = check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION), STATIC_ONLY)
    static = {f.module: f.error.split(": ", 1)[1] for f in report.failures}
    assert static["needsmissing._ext"].startswith("needs libmissing.so, which is neither in the runtime (no RUNPATH)")
    assert "manylinux_2_28 system library" in static["needsmissing._ext"]
    assert static["newglibc.libs.libnew"] == (
        "needs symbol version GLIBC_2.34 from libc.so.6, newer than manylinux_2_28 (build.manylinux 2_28) allows"
    )
    assert "newglibc._ext" not in static  # its libnew.so resolves through $ORIGIN/../newglibc.libs
    assert not report.checks["imports"].ran and report.checks["imports"].note == "not asked for"
    newer = check_prefix(
        RuntimeLayout(runtime_prefix, LINUX, PY_VERSION), VerifySettings(floors=Floors("2_34"), run=False)
    )
    assert {f.module for f in newer.failures} == {"needsmissing._ext", "brokenext"}
    allow = allowances(
        {
            "needsmissing-1.0-*-whl": {"needsmissing._ext": "LIBMISSING.so", "newglibc.libs.*": "glibc_2.34"},
            "brokenext": {"brokenext": "not an ELF file"},
        },
        "checks/linux-x64.json",
    )
    allowed = check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION), VerifySettings(allow, run=False))
    assert allowed.ok and len(allowed.allowed) == 3 and allowed.unused == []
    assert allowed.as_json()["static"]["allowed"][0].startswith("brokenext: brokenext: ")


def _layout(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return root


def test_an_x86_64_library_in_a_linux_aarch64_runtime_fails_naming_file_distribution_and_platform(tmp_path):
    prefix = _layout(tmp_path / "rt", {"bin/python3": "#!/bin/sh\n", f"lib/python{PY_MINOR}/os.py": ""})
    (prefix / f"lib/python{PY_MINOR}/site-packages").mkdir()
    ext = build_extension(tmp_path / "n", "armpkg._ext").read_bytes()
    _install(prefix, tmp_path, "armpkg", {"armpkg/__init__.py": "", f"armpkg/_ext{EXT_SUFFIX}": ext}, tag=TAG)
    report = check_prefix(RuntimeLayout(prefix, get_platform("linux-aarch64"), PY_VERSION), STATIC_ONLY)
    [failure] = report.failures
    assert (failure.distribution, failure.module, failure.kind) == ("armpkg", "armpkg._ext", "static")
    assert failure.error.endswith("architecture x86-64, expected aarch64 for linux-aarch64")
    assert failure.describe("linux-aarch64").startswith("native file 'armpkg._ext' of distribution 'armpkg' (lib/")


WINDOWS = get_platform("windows-x64")


def _windows(tmp_path: Path, extra: dict[str, bytes | str]) -> Path:
    base = {
        "python.exe": pe_file("t64"),
        "python312.dll": pe_file("t64"),
        "DLLs/_ssl.pyd": pe_file("t64"),
        "Lib/os.py": "",
        "Lib/site-packages/okpkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: okpkg\nVersion: 1.0\n",
        "Lib/site-packages/okpkg-1.0.dist-info/RECORD": "".join(f"{p.split('/', 2)[2]},,\n" for p in extra),
    }
    return _layout(tmp_path / "win", {**base, **extra})


def test_windows_runtime_checks_pe_machine_format_and_dlls(tmp_path):
    elf = build_library(tmp_path / "n", "libx.so").read_bytes()
    prefix = _windows(
        tmp_path,
        {
            "Lib/site-packages/okpkg/_good.pyd": pe_file("t64"),  # KERNEL32 + SHLWAPI: system DLLs
            "Lib/site-packages/okpkg/_elf.pyd": elf,
            "Lib/site-packages/okpkg/_elf.so": elf,
            "Lib/site-packages/okpkg/_arm.pyd": pe_file("t64-arm"),
            "Lib/site-packages/okpkg/_lost.pyd": pe_file("t64", {b"SHLWAPI.dll": b"NOTHERE.dll"}),
            "Lib/site-packages/okpkg/launcher-arm.exe": pe_file("t64-arm"),  # data inside a package: not checked
        },
    )
    report = check_prefix(RuntimeLayout(prefix, WINDOWS, "3.12.10"))
    errors = {f.module: f.error.split(": ", 1)[1] for f in report.failures}
    assert errors == {
        "okpkg._elf": "not a PE file (it is an ELF file)",
        "okpkg._arm": "architecture aarch64, expected AMD64 for windows-x64",
        "okpkg._lost": "needs NOTHERE.dll, which is neither in the runtime (the DLL's directory, python.exe's, "
        "DLLs\\ and the runtime's DLLs) nor a Windows system library",
    }
    assert {f.distribution for f in report.failures} == {"okpkg"}
    assert not report.checks["imports"].ran and "cannot run windows-x64" in report.checks["imports"].note
    assert (
        "static checks only"
        in check_prefix(
            RuntimeLayout(prefix, WINDOWS, "3.12.10"), VerifySettings(allowances({"okpkg": {"okpkg._*": ""}}, "t"))
        ).summary()
    )


MAC = get_platform("macosx-aarch64")


def test_macos_runtime_checks_slices_install_names_rpaths_and_the_deployment_floor(tmp_path):
    site = f"lib/python{PY_MINOR}/site-packages"
    system = "/usr/lib/libSystem.B.dylib"
    prefix = _layout(
        tmp_path / "mac",
        {
            f"bin/python{PY_MINOR}": macho("arm64", dylibs=(f"@executable_path/../lib/libpython{PY_MINOR}.dylib",)),
            f"lib/libpython{PY_MINOR}.dylib": macho("arm64", dylibs=(system,)),
            f"{site}/macpkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: macpkg\nVersion: 1.0\n",
            f"{site}/macpkg/.dylibs/libdep.dylib": macho("arm64", dylibs=(system,)),
            f"{site}/macpkg/_universal.so": fat(("x86_64", macho("x86_64", "10.9")), ("arm64", macho("arm64"))),
            f"{site}/macpkg/_intel.so": macho("x86_64"),
            f"{site}/macpkg/_rpath.so": macho(
                "arm64", dylibs=("@rpath/libdep.dylib",), rpaths=("@loader_path/.dylibs",)
            ),
            f"{site}/macpkg/_lost.so": macho("arm64", dylibs=("@rpath/libgone.dylib", "/opt/homebrew/lib/libz.dylib")),
            f"{site}/macpkg/_new.so": macho("arm64", "14.0", dylibs=(system,)),
        },
    )
    record = "".join(f"{p.relative_to(prefix / site).as_posix()},,\n" for p in (prefix / site / "macpkg").rglob("*"))
    (prefix / site / "macpkg-1.0.dist-info" / "RECORD").write_text(record)
    report = check_prefix(RuntimeLayout(prefix, MAC, f"{PY_MINOR}.0"))
    errors = sorted((f.module, f.error.split(": ", 1)[1]) for f in report.failures)
    assert errors == [
        ("macpkg._intel", "architecture x86_64, expected arm64 for macosx-aarch64"),
        (
            "macpkg._lost",
            "needs /opt/homebrew/lib/libz.dylib, which is neither in the runtime (no LC_RPATH) "
            "nor in /usr/lib or /System",
        ),
        (
            "macpkg._lost",
            "needs @rpath/libgone.dylib, which is neither in the runtime (no LC_RPATH) nor in /usr/lib or /System",
        ),
        ("macpkg._new", "needs macOS 14.0, above build.macosx 13.0"),
    ]
    later = check_prefix(RuntimeLayout(prefix, MAC, f"{PY_MINOR}.0"), VerifySettings(floors=Floors("2_28", "14.0")))
    assert "macpkg._new" not in {f.module for f in later.failures}


def _dist(name: str, version: str = "1.0", *requires: str) -> Distribution:
    return Distribution(name, version, (), None, requires=requires)


def test_closure_follows_markers_for_the_target_extras_and_versions():
    dists = [
        _dist(
            "app",
            "1.0",
            "lib>=2",
            "winonly; sys_platform == 'win32'",
            "armonly; platform_machine == 'aarch64'",
            "extra-dep; extra == 'full'",
            "plugin[fast]",
            "ghost",
        ),
        _dist("lib", "1.5"),
        _dist("plugin", "1.0", "speedup; extra == 'fast'"),
        _dist("skipme-user", "1.0", "skipme"),
        _dist("nodeps-pkg", "1.0", "heavy"),
    ]
    failures, checked = check_closure(dists, LINUX, "3.12.10", skipped={"skipme": "config"}, no_deps=["nodeps-pkg"])
    assert [(f.distribution, f.module, f.error) for f in failures] == [
        ("app", "ghost", "requires 'ghost' on linux-x64, but ghost is not installed"),
        ("app", "lib", "requires 'lib>=2', but lib 1.5 is installed"),
        ("plugin", "speedup", "requires 'speedup; extra == \"fast\"' on linux-x64, but speedup is not installed"),
    ]
    windows, _ = check_closure(dists, WINDOWS, "3.12.10", skipped={"skipme": "config"}, no_deps=["nodeps-pkg"])
    assert "winonly" in {f.module for f in windows}
    arm, _ = check_closure(dists, get_platform("linux-aarch64"), "3.12.10", no_deps=["nodeps-pkg"])
    assert {"armonly", "skipme"} <= {f.module for f in arm}
    assert checked == 5  # app: lib, ghost, plugin[fast]; plugin: speedup; skipme-user: skipme


def test_a_broken_closure_in_a_runtime_fails_and_is_allowed_by_distribution_name(runtime_prefix, tmp_path):
    _install(runtime_prefix, tmp_path, "needy", {"needy.py": ""}, requires=("ghost-dep>=1",))
    report = check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION), STATIC_ONLY)
    [closure] = [f for f in report.failures if f.kind == "closure"]
    assert closure.describe("linux-x64") == (
        "requirement 'ghost-dep' of distribution 'needy' failed on linux-x64: "
        "requires 'ghost-dep>=1' on linux-x64, but ghost-dep is not installed"
    )
    allow = allowances({"Needy": {"ghost-dep": "NOT INSTALLED"}, "other": {"x": "y"}}, "checks/linux-x64.json")
    report = check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION), VerifySettings(allow, run=False))
    assert [f.kind for f in report.allowed] == ["closure"]
    assert [(u.source, u.key, u.module) for u in report.unused] == [("checks/linux-x64.json", "other", "x")]
    assert "checks/linux-x64.json: 'other' 'x' allowed no failure on linux-x64" in report.notices()[0]


@pytest.mark.parametrize(
    ("key", "wheel", "matches"),
    [
        ("charset-normalizer-3-*-whl", "charset_normalizer-3.4.1-cp312-cp312-manylinux_2_17_x86_64.whl", True),
        ("charset_normalizer-3.*.whl", "charset_normalizer-3.4.1-cp312-cp312-manylinux_2_17_x86_64.whl", True),
        ("charset-normalizer-3-*-whl", "charset_normalizer-2.1.0-py3-none-any.whl", False),
        ("numpy-*-cp312-*.whl", "numpy-2.2.6-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", True),
        ("numpy-*-cp312-*.whl", "numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl", False),
        ("NumPy", "numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl", True),
    ],
)
def test_allowlist_keys_are_wheel_globs_in_the_seed_forms_or_distribution_names(key, wheel, matches):
    name = wheel.split("-")[0].replace("_", "-")
    assert names_distribution(key, name, wheel) is matches


def test_wheel_names_come_from_the_manifest_else_the_wheel_tags(runtime_prefix, tmp_path):
    _install(runtime_prefix, tmp_path, "tagged", {"tagged.py": ""}, tag=TAG)
    settings = VerifySettings(allowances({f"tagged-1.0-{TAG}.whl": {"tagged": "nothing fails"}}, "t"), run=False)
    assert check_prefix(
        RuntimeLayout(runtime_prefix, LINUX, PY_VERSION), settings
    ).unused  # matched the wheel, not a failure
    settings = VerifySettings(allowances({"custom-name.whl": {"ghost": "not installed"}}, "t"), run=False)
    _install(runtime_prefix, tmp_path, "needy", {"needy.py": ""}, requires=("ghost",))
    manifest = {"packages": [{"name": "needy", "wheel": "custom-name.whl"}]}
    (runtime_prefix / "runenv-manifest.toml").write_text(
        "".join(f'[[packages]]\nname = "{p["name"]}"\nwheel = "{p["wheel"]}"\n' for p in manifest["packages"])
    )
    report = check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION), settings)
    assert [f.distribution for f in report.allowed] == ["needy"]


def test_wheels_installing_start_up_hooks_are_warned_about(runtime_prefix, tmp_path):
    _install(runtime_prefix, tmp_path, "hooky", {"hooky.pth": "import os\n", "sitecustomize.py": "", "hooky.py": ""})
    report = check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION), STATIC_ONLY)
    assert len(report.warnings) == 2 and all("'hooky'" in w and "every start" in w for w in report.warnings)
    assert any("hooky.pth" in w for w in report.warnings) and any("sitecustomize.py" in w for w in report.warnings)
    assert report.as_json()["warnings"] == report.warnings


def test_report_json_is_camel_case_and_says_what_ran(runtime_prefix):
    data = check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION)).as_json()
    assert set(data) >= {"imports", "emulatedImports", "static", "closure", "failures", "allowedFailures"}
    assert data["imports"]["ran"] and data["imports"]["extensionModules"] == 1
    assert data["emulatedImports"] == {"ran": False, "note": "not needed", "failed": 0, "allowed": []}
    assert data["static"]["nativeFiles"] > data["static"]["packageFiles"] == 1
    json.dumps(data)


def test_a_native_file_is_parsed_once_by_its_content(tmp_path):
    """ParsedFiles keeps what a file said by its sha256: the same bytes anywhere are not parsed again, a
    damaged entry is parsed again and replaced, and a file that does not parse is never kept."""
    arch = get_platform(HOST).arch
    library = next(Path(sysconfig.get_config_var("DESTSHARED")).glob("*.so"))
    good = NativeCandidate(library, "lib/good.so", "pkg", True)
    junk_file = tmp_path / "junk.so"
    junk_file.write_bytes(b"\x7fELF" + b"\0" * 60)
    junk = NativeCandidate(junk_file, "lib/junk.so", "pkg", True)
    parsed = ParsedFiles(tmp_path / "cache", {"lib/good.so": sha256_file(library), "lib/junk.so": "0" * 64})
    first = parsed.read(good, "elf", arch)
    assert first.format == "elf" and first.error is None and first.needed
    [entry] = (tmp_path / "cache" / "native").iterdir()
    assert NativeFile.from_json(json.loads(entry.read_text())) == first
    moved = NativeCandidate(tmp_path / "gone.so", "lib/good.so", "other", True)  # the same bytes, said the digests
    assert parsed.read(moved, "elf", arch) == first  # from the entry: the path is not even opened
    entry.write_text("{not json")
    assert parsed.read(good, "elf", arch) == first and json.loads(entry.read_text())["format"] == "elf"
    assert parsed.read(junk, "elf", arch).error is not None
    assert len(list((tmp_path / "cache" / "native").iterdir())) == 1
