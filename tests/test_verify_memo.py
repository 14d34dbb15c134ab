"""Verification reuse: the same tarball bytes under the same checks get their passed report back; anything
that could change the verdict (bytes, allowlist, --recheck, a damaged entry, a failure) checks again."""

from __future__ import annotations

import json
import os
from pathlib import Path

from runenv.build.verify.proven import source_of, top_level_name
from tests.helpers import HOST
from tests.helpers.pbs import VERSION
from tests.helpers.runtime_prefix import (
    PLATFORM,
    PY_MINOR,
    PY_VERSION,
    copy_tree,
    install_wheel,
    make_wheel,
    pack_runtime,
)

ALLOW = {"brokenext": {"brokenext": "ELF"}, "raisepkg": {"raisepkg": "refuses to import"}}


def _memo_entries() -> list[Path]:
    root = Path(os.environ["RUNENV_CACHE_DIR"]) / "verified"
    return sorted(root.iterdir()) if root.is_dir() else []


def _allow(ws: Path, allow: dict[str, dict[str, str]]) -> None:
    config = ws / f"python-{PY_VERSION}" / "config.json"
    config.write_text(json.dumps({"build": {"platforms": [PLATFORM]}, "verify": {"allow": allow}}))


def _verify(run_cli, ws: Path, *extra: str) -> dict:
    result = run_cli("-w", ws, "-o", "json", "verify", PY_VERSION, *extra)
    assert result.code == 0, result.stderr
    return result.json()


def test_a_passed_tarball_is_not_checked_twice(runtime_workspace, run_cli):
    _allow(runtime_workspace, ALLOW)
    first = _verify(run_cli, runtime_workspace)
    assert first["ok"] and first["relocated"] and "reused" not in first
    assert len(_memo_entries()) == 1
    again = _verify(run_cli, runtime_workspace)
    assert again.pop("reused") is True
    assert again == first  # the same report: the same modules, allowed failures and notes
    text = run_cli("-w", runtime_workspace, "verify", PY_VERSION)
    assert text.code == 0 and "(reused: these bytes passed these checks before)" in text.stdout
    rechecked = _verify(run_cli, runtime_workspace, "--recheck")
    assert "reused" not in rechecked and rechecked["imports"]["modules"] == first["imports"]["modules"]


def test_a_changed_allowlist_checks_again(runtime_workspace, run_cli):
    _allow(runtime_workspace, ALLOW)
    _verify(run_cli, runtime_workspace)
    _allow(runtime_workspace, {"brokenext": ALLOW["brokenext"]})  # raisepkg's failure no longer allowed
    failed = run_cli("-w", runtime_workspace, "verify", PY_VERSION)
    assert failed.code == 1 and "raisepkg" in failed.error
    _allow(runtime_workspace, {**ALLOW, "otherpkg": {"othermod": "never fails"}})
    wider = _verify(run_cli, runtime_workspace)
    assert "reused" not in wider and wider["unusedAllowances"]


def test_other_bytes_are_checked_again(runtime_workspace, runtime_template, run_cli, tmp_path):
    _allow(runtime_workspace, ALLOW)
    _verify(run_cli, runtime_workspace)
    prefix = copy_tree(runtime_template, tmp_path / "changed" / f"python-{PY_VERSION}-{PLATFORM}")
    (prefix / "NOTICE.txt").write_text("one more file: other tarball bytes\n")
    pack_runtime(prefix, runtime_workspace / "dist")
    changed = _verify(run_cli, runtime_workspace)
    assert "reused" not in changed and changed["ok"]
    assert len(_memo_entries()) == 2


def test_a_failure_is_never_remembered(runtime_workspace, run_cli):
    for _ in range(2):
        failed = run_cli("-w", runtime_workspace, "verify", PY_VERSION)
        assert failed.code == 1 and failed.error.startswith("error: ")
    assert _memo_entries() == []


def test_a_damaged_entry_is_checked_again_and_replaced(runtime_workspace, run_cli):
    _allow(runtime_workspace, ALLOW)
    first = _verify(run_cli, runtime_workspace)
    [entry] = _memo_entries()
    for damage in (entry.read_text()[:40], "[]", json.dumps({**first, "failures": [{"module": "x"}]})):
        entry.write_text(damage)
        checked = _verify(run_cli, runtime_workspace)
        assert "reused" not in checked and checked["ok"]
        replaced = json.loads(entry.read_text())  # the new report, in place of the damaged one
        assert replaced["ok"] and replaced["imports"]["modules"] == first["imports"]["modules"]
    assert _verify(run_cli, runtime_workspace)["reused"] is True


def test_a_built_runtime_is_verified_once(build_workspace, run_cli):
    ws = build_workspace()
    built = run_cli("-w", ws, "-o", "json", "build", VERSION)
    assert built.code == 0, built.stderr
    [artifact] = built.json()
    verified = run_cli("-w", ws, "-o", "json", "verify", VERSION, "-p", HOST)
    assert verified.code == 0, verified.stderr
    report = verified.json()
    assert report["reused"] is True and report["ok"] == artifact["verify"]["ok"] is True
    rebuilt = run_cli("-w", ws, "-o", "json", "build", VERSION, "--rebuild")
    assert rebuilt.code == 0 and "reused" not in rebuilt.json()[0]["verify"]  # --rebuild checks again too


# Import results kept per distribution (runenv/build/verify/proven.py): a new tarball imports only what changed.


def _runtime_with(template: Path, where: Path, ws: Path, wheels: list[Path], edits: dict[str, str]) -> None:
    """The template prefix plus `wheels`, with files (relative to the prefix) replaced by `edits`, packed into
    the workspace's dist/ (the template's files are hard links: each edit writes a new file in their place)."""
    prefix = copy_tree(template, where / f"python-{PY_VERSION}-{PLATFORM}")
    for wheel in wheels:
        install_wheel(prefix, wheel)
    for relative, text in edits.items():
        (prefix / relative).unlink(missing_ok=True)
        (prefix / relative).write_text(text)
    pack_runtime(prefix, ws / "dist")


def _pair(dest: Path, helper_version: str, helper_source: str) -> list[Path]:
    """helperpkg, and userpkg whose import reads helperpkg.VALUE (a dependency its metadata does not declare)."""
    return [
        make_wheel(dest, "helperpkg", helper_version, {"helperpkg/__init__.py": helper_source}),
        make_wheel(dest, "userpkg", "1.0", {"userpkg/__init__.py": "import helperpkg\n\nX = helperpkg.VALUE\n"}),
    ]


SITE_FILE = f"lib/python{PY_MINOR}/site-packages"


def test_a_new_tarball_imports_only_the_distributions_whose_bytes_changed(
    runtime_workspace, runtime_template, run_cli, tmp_path
):
    _allow(runtime_workspace, ALLOW)
    wheels = _pair(tmp_path / "wheels", "1.0", "VALUE = 1\n")
    _runtime_with(runtime_template, tmp_path / "one", runtime_workspace, wheels, {})
    first = _verify(run_cli, runtime_workspace)
    assert first["ok"] and "reusedModules" not in first["imports"]
    edit = {f"{SITE_FILE}/goodpkg/__init__.py": "__version__ = '1.0'  # edited, RECORD left alone\n"}
    _runtime_with(runtime_template, tmp_path / "two", runtime_workspace, wheels, edit)
    second = _verify(run_cli, runtime_workspace)
    assert "reused" not in second and second["ok"]  # other tarball bytes: checked, not the kept report
    assert second["imports"]["modules"] == first["imports"]["modules"]
    # helperpkg and userpkg passed with these bytes; goodpkg changed; failures (allowed here) are never kept
    assert second["imports"]["reusedModules"] == 2
    text = run_cli("-w", runtime_workspace, "verify", PY_VERSION, "--recheck")
    assert text.code == 0 and "passed before" not in text.stdout  # --recheck imports everything again


def test_a_changed_dependency_imports_its_importers_again(runtime_workspace, runtime_template, run_cli, tmp_path):
    _allow(runtime_workspace, ALLOW)
    _runtime_with(
        runtime_template, tmp_path / "one", runtime_workspace, _pair(tmp_path / "w1", "1.0", "VALUE = 1\n"), {}
    )
    assert _verify(run_cli, runtime_workspace)["ok"]
    # helperpkg 2.0 still imports, but userpkg (the same bytes) no longer does
    helper2 = _pair(tmp_path / "w2", "2.0", "RENAMED = 1\n")
    _runtime_with(runtime_template, tmp_path / "two", runtime_workspace, helper2, {})
    failed = run_cli("-w", runtime_workspace, "-o", "json", "verify", PY_VERSION)
    assert failed.code == 1
    [failure] = failed.json()["failures"]
    assert (failure["distribution"], failure["module"]) == ("userpkg", "userpkg")
    assert "VALUE" in failure["error"]


def test_a_change_outside_every_distribution_imports_everything_again(
    runtime_workspace, runtime_template, run_cli, tmp_path
):
    _allow(runtime_workspace, ALLOW)
    wheels = _pair(tmp_path / "wheels", "1.0", "VALUE = 1\n")
    _runtime_with(runtime_template, tmp_path / "one", runtime_workspace, wheels, {})
    assert _verify(run_cli, runtime_workspace)["ok"]
    hook = {f"{SITE_FILE}/extra.pth": "# runs at every start: it could change any import\n"}
    _runtime_with(runtime_template, tmp_path / "two", runtime_workspace, wheels, hook)
    again = _verify(run_cli, runtime_workspace)
    assert again["ok"] and "reusedModules" not in again["imports"]


def test_files_are_owned_by_their_source_and_their_top_level_module():
    assert (
        source_of("lib/python3.12/site-packages/a/__pycache__/m.cpython-312.pyc")
        == "lib/python3.12/site-packages/a/m.py"
    )
    assert source_of("a/__pycache__/m.cpython-312.opt-1.pyc") == "a/m.py"
    assert source_of("a/m.pyc") is None and source_of("a/__pycache__/m.py") is None
    assert top_level_name("numpy/core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so") == "numpy"
    assert top_level_name("six.py") == "six" and top_level_name("_cffi_backend.cpython-312-x86_64-linux-gnu.so")
    assert top_level_name("numpy-2.2.6.dist-info/RECORD") is None
    assert (
        top_level_name("distutils-precedence.pth") is None and top_level_name("__pycache__/six.cpython-312.pyc") is None
    )


OPTIONAL_IMPORT = "try:\n    import optdep\nexcept ImportError:\n    optdep = None\nX = optdep.VALUE if optdep else 1\n"


OPTIONAL_IMPORT = (
    "try:\n    import optdep\nexcept ImportError:\n    optdep = None\n\nX = optdep.VALUE if optdep else 1\n"
)


def test_a_distribution_installed_later_that_an_importer_asks_for_imports_it_again(
    runtime_workspace, runtime_template, run_cli, tmp_path
):
    """userpkg imports optdep when it is there: adding an optdep that does not fit must fail userpkg."""
    _allow(runtime_workspace, ALLOW)
    user = make_wheel(
        tmp_path / "w",
        "userpkg",
        "1.0",
        {"userpkg/__init__.py": OPTIONAL_IMPORT},
    )
    exiter = make_wheel(tmp_path / "w", "exiter", "1.0", {"exiter/__init__.py": "import sys\n\nsys.exit(0)\n"})
    _runtime_with(runtime_template, tmp_path / "one", runtime_workspace, [user, exiter], {})
    assert _verify(run_cli, runtime_workspace)["ok"]
    optdep = make_wheel(tmp_path / "w", "optdep", "1.0", {"optdep/__init__.py": "OTHER = 1\n"})
    _runtime_with(runtime_template, tmp_path / "two", runtime_workspace, [user, exiter, optdep], {})
    failed = run_cli("-w", runtime_workspace, "-o", "json", "verify", PY_VERSION)
    assert failed.code == 1
    assert [(f["distribution"], f["module"]) for f in failed.json()["failures"]] == [("userpkg", "userpkg")]


def test_what_an_import_reads_without_importing_it_is_a_dependency(
    runtime_workspace, runtime_template, run_cli, tmp_path
):
    """userpkg checks helperpkg's version through its metadata (never importing it): a new helperpkg fails it;
    a module that leaves by sys.exit(0) while importing is never kept."""
    _allow(runtime_workspace, ALLOW)
    check = "from importlib.metadata import version\n\nassert version('helperpkg') == '1.0', version('helperpkg')\n"

    def wheels(helper: str) -> list[Path]:
        return [
            make_wheel(tmp_path / helper, "helperpkg", helper, {"helperpkg/__init__.py": "VALUE = 1\n"}),
            make_wheel(tmp_path / helper, "userpkg", "1.0", {"userpkg/__init__.py": check}),
            make_wheel(tmp_path / helper, "exiter", "1.0", {"exiter/__init__.py": "import sys\n\nsys.exit(0)\n"}),
        ]

    _runtime_with(runtime_template, tmp_path / "one", runtime_workspace, wheels("1.0"), {})
    assert _verify(run_cli, runtime_workspace)["ok"]
    edit = {f"{SITE_FILE}/goodpkg/__init__.py": "__version__ = '1.0'  # other bytes\n"}
    _runtime_with(runtime_template, tmp_path / "same", runtime_workspace, wheels("1.0"), edit)
    again = _verify(run_cli, runtime_workspace)
    assert again["imports"]["reusedModules"] == 2  # helperpkg and userpkg; not exiter, not goodpkg
    _runtime_with(runtime_template, tmp_path / "two", runtime_workspace, wheels("2.0"), {})
    failed = run_cli("-w", runtime_workspace, "-o", "json", "verify", PY_VERSION)
    assert failed.code == 1
    assert [(f["distribution"], f["module"]) for f in failed.json()["failures"]] == [("userpkg", "userpkg")]
