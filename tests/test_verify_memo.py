"""Verification reuse: the same tarball bytes under the same checks get their passed report back; anything
that could change the verdict (bytes, allowlist, --recheck, a damaged entry, a failure) checks again."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.helpers import HOST
from tests.helpers.pbs import VERSION
from tests.helpers.runtime_prefix import PLATFORM, PY_VERSION, copy_tree, pack_runtime

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
