"""The import checker and the relocation smoke test over a real interpreter prefix with real wheels."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import pytest

from runenv.build.verify import (
    VerifyError,
    VerifySettings,
    allowances,
    check_prefix,
    find_distributions,
    verify_tarball,
)
from runenv.build.verify import imports as verify_imports
from runenv.build.verify.allowlist import load_allowances
from runenv.build.verify.imports import ImportPlan, served_imports
from runenv.build.verify.launcher import Launcher
from runenv.errors import BuildError, ConfigError
from runenv.platforms import RuntimeLayout, get_platform
from tests.helpers.built import leftovers
from tests.helpers.runtime_prefix import (
    EXT_SUFFIX,
    PLATFORM,
    PY_MINOR,
    PY_VERSION,
    install_wheel,
    make_wheel,
    pack_runtime,
)

LINUX = get_platform(PLATFORM)
BOTH_BROKEN = {"raisepkg": {"raisepkg": "refuses to import"}, "brokenext": {"brokenext": "ELF"}}
# Imports that end their process in every way a module can, and one that checks it runs as under `python -I -c`.
CRASHING = {
    "segvpkg": "import ctypes\nctypes.string_at(0)\n",
    "abortpkg": "import os\nos.abort()\n",
    "exitpkg": "import os\nprint('lost: os._exit does not flush')\nos._exit(3)\n",
    "sysexitpkg": "import sys\nsys.exit('sysexitpkg: no config found')\n",
    "hangpkg": "import time\ntime.sleep(600)\n",
    "threadpkg": "import threading, time\nthreading.Thread(target=time.sleep, args=(600,)).start()\n",
    "daemonpkg": "import threading, time\nthreading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n",
    "statepkg": (
        "import os, sys\nassert sys.argv == ['-c', 'statepkg'], sys.argv\n"
        "assert sys.flags.isolated and 'PYTHONPATH' not in os.environ\n"
    ),
}
CRASH_ERRORS = {  # module: error, for every failure but brokenext's (its wording is the dynamic loader's)
    "segvpkg": "killed by signal SIGSEGV",
    "abortpkg": "killed by signal SIGABRT",
    "exitpkg": "failed without output",
    "sysexitpkg": "sysexitpkg: no config found",
    "hangpkg": "timed out after 3s",
    "threadpkg": "timed out after 3s",
    "raisepkg": "RuntimeError: raisepkg refuses to import",
}


def _site(prefix: Path) -> Path:
    return prefix / "lib" / f"python{PY_MINOR}" / "site-packages"


def allow(data: dict[str, dict[str, str]]) -> VerifySettings:
    return VerifySettings(allowances(data, "test"))


def _dists(prefix: Path):
    return {d.name: d for d in find_distributions(RuntimeLayout(prefix, LINUX, PY_VERSION))}


def _served(prefix: Path, modules: dict[str, str]) -> dict[str, str]:
    plan = ImportPlan(modules, {})
    return served_imports(Launcher(), RuntimeLayout(prefix, LINUX, PY_VERSION), plan, 4).outputs


def test_distributions_and_modules_come_from_top_level_record_or_files(runtime_prefix):
    bare = _site(runtime_prefix) / "bare_dist-3.0.dist-info"
    bare.mkdir()
    (bare / "METADATA").write_text("Metadata-Version: 2.1\nName: Bare-Dist\nVersion: 3.0\n")
    (_site(runtime_prefix) / "bare_dist.py").write_text("X = 1\n")
    dists = _dists(runtime_prefix)
    assert set(dists) == {"bare-dist", "brokenext", "goodpkg", "raisepkg"}
    assert dists["goodpkg"].modules == ("goodpkg",) and dists["goodpkg"].console_script == "goodpkg"
    assert dists["brokenext"].modules == ("brokenext",)  # from RECORD: no top_level.txt in that wheel
    assert dists["bare-dist"].modules == ("bare_dist",) and dists["bare-dist"].version == "3.0"


def test_top_level_names_that_are_not_installed_are_not_imported(runtime_prefix, tmp_path):
    # pyarrow's wheel lists a `__dummy__` module in top_level.txt that it does not ship.
    wheel = make_wheel(tmp_path / "w", "arrowish", "1.0", {"arrowish/__init__.py": "", "arrowish_ext.py": ""})
    install_wheel(runtime_prefix, wheel)
    info = _site(runtime_prefix) / "arrowish-1.0.dist-info"
    (info / "top_level.txt").write_text("__dummy__\narrowish\narrowish_ext\n")
    dists = _dists(runtime_prefix)
    assert dists["arrowish"].modules == ("arrowish", "arrowish_ext")


def test_checker_catches_import_time_error_and_broken_extension(runtime_prefix):
    report = check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION))
    failed = {(f.kind, f.distribution, f.module): f for f in report.failures}
    assert set(failed) == {
        ("import", "raisepkg", "raisepkg"),
        ("import", "brokenext", "brokenext"),
        ("static", "brokenext", "brokenext"),  # the garbage file is no ELF file either
    }
    assert failed["import", "raisepkg", "raisepkg"].error == "RuntimeError: raisepkg refuses to import"
    assert "ImportError" in failed["import", "brokenext", "brokenext"].error
    assert failed["static", "brokenext", "brokenext"].error.endswith(f"brokenext{EXT_SUFFIX}: not an ELF file")
    assert report.count("imports", "modules") == 3 and report.count("imports", "scripts") == 1 and not report.ok
    assert "'brokenext' of distribution 'brokenext'" in report.summary()


@pytest.fixture
def crashing_prefix(runtime_prefix, tmp_path, monkeypatch):
    """The runtime prefix with the CRASHING packages installed, and imports timing out after 3 s."""
    for name, source in CRASHING.items():
        install_wheel(runtime_prefix, make_wheel(tmp_path / "w", name, "1.0", {f"{name}/__init__.py": source}))
    monkeypatch.setattr(verify_imports, "IMPORT_TIMEOUT", 3)
    return runtime_prefix


def _crash_errors(failures) -> dict[str, str]:
    failures = [f for f in failures if f.kind == "import"]
    assert {f.distribution for f in failures} == {f.module for f in failures}  # each package is its module
    assert "ImportError" in next(f.error for f in failures if f.module == "brokenext")
    return {f.module: f.error for f in failures if f.module != "brokenext"}


def test_fork_server_reports_each_crash_and_hides_no_other_module(crashing_prefix):
    owner = {m: d.name for d in _dists(crashing_prefix).values() for m in d.modules}
    served = _served(crashing_prefix, owner)
    assert set(served) == set(owner)  # the server answered for every module: nothing fell back
    assert served["sysexitpkg"] == "sysexitpkg: no config found" and served["goodpkg"] == ""
    report = check_prefix(RuntimeLayout(crashing_prefix, LINUX, PY_VERSION), allow({"segvpkg": {"segvpkg": "SIGSEGV"}}))
    assert [(f.distribution, f.module, f.error) for f in report.allowed] == [
        ("segvpkg", "segvpkg", "killed by signal SIGSEGV")
    ]
    assert _crash_errors(report.failures) == {m: e for m, e in CRASH_ERRORS.items() if m != "segvpkg"}
    assert report.count("imports", "modules") == 3 + len(CRASHING) and report.count("imports", "scripts") == 1
    assert _processes_running(crashing_prefix) == []  # the hanging imports were killed


def _processes_running(prefix: Path) -> list[str]:
    executables = []
    for link in Path("/proc").glob("[0-9]*/exe"):
        with contextlib.suppress(OSError):  # ended meanwhile, or not ours to look at
            executables.append(os.readlink(link))
    return [exe for exe in executables if exe.startswith(str(prefix))]


def test_every_module_gets_its_own_interpreter_when_the_server_cannot_start(crashing_prefix, monkeypatch):
    monkeypatch.setattr(verify_imports, "server_code", lambda: "raise SystemExit(1)")
    assert _served(crashing_prefix, {"goodpkg": "goodpkg"}) == {}
    report = check_prefix(RuntimeLayout(crashing_prefix, LINUX, PY_VERSION))
    assert _crash_errors(report.failures) == CRASH_ERRORS
    assert report.count("imports", "modules") == 3 + len(CRASHING)


def test_modules_the_server_leaves_unanswered_get_their_own_interpreter(runtime_prefix, monkeypatch):
    # A server that stops after the first module of its plan (brokenext): goodpkg and raisepkg fall back.
    code = verify_imports.server_code()
    cut = (
        "import os, sys\nwith open(os.path.join(sys.argv[1], 'plan'), 'r+') as f:\n    f.truncate(len(f.readline()))\n"
    )
    head, future, rest = code.partition("from __future__ import")  # a __future__ import must come first
    future_line, _, rest = (future + rest).partition("\n")
    monkeypatch.setattr(verify_imports, "server_code", lambda: head + future_line + "\n" + cut + rest)
    owner = {"brokenext": "brokenext", "goodpkg": "goodpkg", "raisepkg": "raisepkg"}
    assert set(_served(runtime_prefix, owner)) == {"brokenext"}
    report = check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION))
    imports = [f for f in report.failures if f.kind == "import"]
    assert [f.module for f in imports] == ["brokenext", "raisepkg"]
    assert imports[1].error == "RuntimeError: raisepkg refuses to import"


def test_whitelist_lets_exactly_the_named_failure_through(runtime_prefix):
    report = check_prefix(
        RuntimeLayout(runtime_prefix, LINUX, PY_VERSION), allow({"raisepkg": {"raisepkg": "REFUSES to import"}})
    )
    assert [(f.distribution, f.module) for f in report.allowed] == [("raisepkg", "raisepkg")]
    assert {(f.distribution, f.module) for f in report.failures} == {("brokenext", "brokenext")}
    # The substring must match the error: an allow entry for another error does not hide this one.
    report = check_prefix(
        RuntimeLayout(runtime_prefix, LINUX, PY_VERSION), allow({"raisepkg": {"raisepkg": "SyntaxError"}})
    )
    assert {f.module for f in report.failures} == {"raisepkg", "brokenext"}
    assert [(u.key, u.module) for u in report.unused] == [("raisepkg", "raisepkg")]
    assert check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION), allow(BOTH_BROKEN)).ok


def test_console_script_failing_both_flags_is_reported(runtime_prefix, tmp_path):
    wheel = make_wheel(
        tmp_path / "w",
        "badcli",
        "1.0",
        {"badcli/__init__.py": "def main():\n    raise SystemExit(3)\n"},
        console_scripts={"badcli": "badcli:main"},
    )
    install_wheel(runtime_prefix, wheel)
    report = check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION), allow(BOTH_BROKEN))
    assert [(f.distribution, f.module, f.kind) for f in report.failures] == [("badcli", "badcli", "script")]
    assert report.count("imports", "scripts") == 2


def test_host_python_environment_does_not_leak_in(runtime_prefix, tmp_path, monkeypatch):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "raisepkg.py").write_text("")  # would shadow the broken package if PYTHONPATH leaked in
    monkeypatch.setenv("PYTHONPATH", str(fake))
    monkeypatch.setenv("PYTHONHOME", "/nonexistent")
    report = check_prefix(RuntimeLayout(runtime_prefix, LINUX, PY_VERSION))
    assert {f.module for f in report.failures if f.kind == "import"} == {"raisepkg", "brokenext"}


def test_verify_tarball_runs_relocated_after_the_build_dir_is_gone(runtime_prefix, tmp_path):
    tarball = pack_runtime(runtime_prefix, tmp_path / "dist")
    shutil.rmtree(runtime_prefix)  # the build directory no longer exists: nothing can lean on it
    scratch = tmp_path / "scratch"
    report = verify_tarball(tarball, LINUX, PY_VERSION, allow(BOTH_BROKEN), scratch=scratch)
    assert report.ok and report.relocated and report.count("imports", "modules") == 3
    assert {f.module for f in report.allowed} == {"raisepkg", "brokenext"}
    assert list(scratch.iterdir()) == []  # the temp dir is removed


def test_verify_tarball_failure_is_one_line_naming_module_and_distribution(runtime_tarball, tmp_path):
    with pytest.raises(VerifyError) as caught:
        verify_tarball(runtime_tarball, LINUX, PY_VERSION, allow({"brokenext": {"brokenext": "ELF"}}), scratch=tmp_path)
    assert "\n" not in caught.value.message
    assert "'raisepkg' of distribution 'raisepkg'" in caught.value.message
    assert caught.value.exit_code == 1 and list(tmp_path.iterdir()) == []


def test_smoke_test_catches_an_interpreter_that_does_not_start(runtime_prefix, tmp_path):
    (runtime_prefix / "lib" / f"python{PY_MINOR}" / "os.py").unlink()
    tarball = pack_runtime(runtime_prefix, tmp_path / "dist")
    with pytest.raises(BuildError, match="relocation smoke test failed on linux-x64"):
        verify_tarball(tarball, LINUX, PY_VERSION, allow(BOTH_BROKEN), scratch=tmp_path / "s")


def test_allowlist_merges_checks_file_with_config(tmp_path):
    checks = tmp_path / "checks" / "linux-x64.json"
    checks.parent.mkdir()
    checks.write_text(json.dumps({"Broken_Ext": {"brokenext": "ELF"}, "raisepkg": {"raisepkg": "old"}}))
    found = load_allowances(tmp_path, "linux-x64", {"raisepkg": {"raisepkg": "refuses"}})
    assert {(a.source, a.key, a.module, a.substring) for a in found} == {
        ("checks/linux-x64.json", "Broken_Ext", "brokenext", "ELF"),
        ("verify.allow", "raisepkg", "raisepkg", "refuses"),
    }
    assert load_allowances(tmp_path, "windows-x64", {}) == []
    checks.write_text(json.dumps({"raisepkg": ["not", "a", "map"]}))
    with pytest.raises(ConfigError, match=r"checks/linux-x64.json: raisepkg: expected an object"):
        load_allowances(tmp_path, "linux-x64", {})


def test_verify_command_fails_with_one_line_then_passes_when_whitelisted(runtime_workspace, run_cli):
    failed = run_cli("-w", runtime_workspace, "verify", PY_VERSION)
    assert failed.code == 1
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "distribution" in errors[0] and "Traceback" not in failed.stderr
    checks = runtime_workspace / "checks" / f"{PLATFORM}.json"
    checks.parent.mkdir()
    checks.write_text(json.dumps({"brokenext": {"brokenext": "ELF"}}))
    config = runtime_workspace / f"python-{PY_VERSION}" / "config.json"
    config.write_text(
        json.dumps(
            {
                "build": {"platforms": [PLATFORM]},
                "verify": {"allow": {"raisepkg": {"raisepkg": "refuses to import"}}},
            }
        )
    )
    passed = run_cli("-w", runtime_workspace, "-o", "json", "verify", PY_VERSION)
    assert passed.code == 0, passed.stderr
    report = passed.json()
    assert report["ok"] and report["relocated"] and report["imports"]["modules"] == 3
    assert sorted(f["module"] for f in report["allowedFailures"]) == ["brokenext", "brokenext", "raisepkg"]
    assert report["imports"]["allowed"] and report["static"]["allowed"] and report["closure"]["ran"]
    assert leftovers(runtime_workspace) == []


def test_verify_tarball_with_relative_scratch_and_tarball_paths(runtime_tarball, tmp_path, monkeypatch):
    shutil.copy(runtime_tarball, tmp_path / runtime_tarball.name)
    monkeypatch.chdir(tmp_path)
    report = verify_tarball(Path(runtime_tarball.name), LINUX, PY_VERSION, allow(BOTH_BROKEN), scratch=Path("scratch"))
    assert report.ok and report.relocated


def test_config_validate_checks_the_allowlist_files(make_workspace, run_cli):
    ws = make_workspace(runtimes={PY_VERSION: {"verify": {"allow": {"numpy-*-cp312-*.whl": {"numpy._x": "boom"}}}}})
    (ws / "checks").mkdir()
    good = {"charset-normalizer-3-*-whl": {"81d243bd2c585b0f4821__mypyc": "invalid decimal literal"}}
    (ws / "checks" / "linux-x64.json").write_text(json.dumps(good))
    assert run_cli("-w", ws, "config", "validate").code == 0
    (ws / "checks" / "windows-x64.json").write_text(json.dumps({"pywin32": {"win32api": 3}}))
    bad = run_cli("-w", ws, "config", "validate")
    assert bad.code == 2 and "checks/windows-x64.json: pywin32.win32api: expected an error substring" in bad.stderr
    (ws / "checks" / "windows-x64.json").unlink()
    (ws / "checks" / "linux-amd64.json").write_text("{}")
    bad = run_cli("-w", ws, "config", "validate")
    assert bad.code == 2 and "linux-amd64.json: not a platform key" in bad.stderr and "Traceback" not in bad.stderr


def test_verify_any_platform_and_all_platforms(runtime_workspace, run_cli, tmp_path):
    from tests.helpers.pbs import _write_files, windows_layout

    windows = _write_files(tmp_path / "win", windows_layout(PY_MINOR))
    pack_runtime(windows, runtime_workspace / "dist", f"python-{PY_VERSION}-windows-x64")
    result = run_cli("-w", runtime_workspace, "-o", "json", "verify", PY_VERSION, "--platform", "windows-x64")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["platform"] == "windows-x64" and report["static"]["ran"] and report["closure"]["ran"]
    assert not report["imports"]["ran"] and not report["emulatedImports"]["ran"] and not report["relocated"]
    config = runtime_workspace / f"python-{PY_VERSION}" / "config.json"
    config.write_text(json.dumps({"build": {"platforms": ["linux-x64", "windows-x64", "macosx-x64"]}}))
    both = run_cli("-w", runtime_workspace, "-o", "json", "verify", PY_VERSION, "--all-platforms")
    assert both.code == 1  # the linux-x64 runtime holds the broken fixtures
    assert [r["platform"] for r in both.json()] == ["linux-x64", "windows-x64"]
    assert "not built for macosx-x64" in both.stderr
    [error] = [line for line in both.stderr.splitlines() if line.startswith("error:")]
    assert "linux-x64" in error
