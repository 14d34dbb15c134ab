"""One JSON convention: every command's `--output json` uses camelCase keys (lock and manifest TOML keep theirs)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runenv.platforms import PLATFORM_KEYS
from tests.helpers.index import TestIndex
from tests.helpers.pbs import VERSION

CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
# Maps keyed by names the user chose (package names), as in the config files; their values are still checked.
DATA_MAPS = {"overrides", "skip", "exclude", "forceSource", "platformSpecific", "buildWheel", "sha256"}
OPAQUE = {"allow"}  # verify.allow: {distribution or wheel glob: {module: error substring}}, data all the way down
NAMES = {*PLATFORM_KEYS, "*"}  # platform keys (and "*" for every other platform) key per-platform maps


def non_camel_keys(data: Any, where: str = "", data_keys: bool = False) -> list[str]:
    """Every key below `data` that is not camelCase (nor a platform key or a user's name), as a JSON path."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{where}.{key}"
            if key in OPAQUE:
                continue
            if not (data_keys or key in NAMES or CAMEL.match(key)):
                found.append(path)
            found += non_camel_keys(value, path, data_keys=key in DATA_MAPS)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += non_camel_keys(value, f"{where}[{i}]")
    return found


def test_the_checker_finds_snake_and_kebab_keys() -> None:
    assert non_camel_keys({"ok": 1, "dryRun": 2, "a": [{"required-by": 3, "python_version": 4}]}) == [
        ".a[0].required-by",
        ".a[0].python_version",
    ]
    assert non_camel_keys({"sha256": {"linux-x64": "…"}, "overrides": {"my_pkg": "==1"}}) == []
    assert non_camel_keys({"skip": {"my_pkg": {"linux-x64": "why"}}, "build": {"hooks": {"*": None}}}) == []
    assert non_camel_keys({"skip": {"my_pkg": {"bad_key": 1}}}) == [".skip.my_pkg.bad_key"]


@pytest.fixture
def workspace(index: TestIndex, build_workspace) -> Path:
    """A workspace with packages, a fallback skip, a skip rule a kept package overrides, and a git repository."""
    ws = build_workspace(
        runtimes={
            VERSION: {
                "packages": {
                    "dependencies": ["tool-a", "needs-winonly"],  # no Linux wheel of winonly: skipped there
                    "overrides": {"helper-lib": ">=0"},
                    "skip": {"helper-lib": {"linux-x64": "comes with tool-a"}},  # tool-a needs it: kept
                },
                "build": {"platforms": ["linux-x64", "windows-x64"]},
            }
        }
    )
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    return ws


def test_every_command_s_json_is_camel_case(workspace: Path, run_cli, tmp_path: Path) -> None:
    ws = workspace
    target = tmp_path / "published"
    commands: list[list[str]] = [
        ["versions"],
        ["config", "show", VERSION],
        ["config", "show", VERSION, "-p", "linux-x64"],
        ["config", "validate"],
        ["python", "list"],
        ["python", "list", "3.12.10"],
        ["lock", VERSION, "--all-platforms"],
        ["check"],
        ["build", VERSION, "--all-platforms"],
        ["verify", VERSION],
        ["verify", VERSION, "--all-platforms"],
        ["check"],
        ["activate", VERSION],
        ["publish", VERSION, "--to", str(target), "--dry-run"],
        ["publish", VERSION, "--to", str(target)],
        ["publish", VERSION, "--to", str(target)],
        ["matrix"],
        ["ci", "github"],
        ["new", "3.12.10-extra", "--release", "20250517"],
        ["python", "pin", VERSION],
        ["cleanup", "--dry-run"],
        ["cleanup"],
    ]
    seen = set()
    for i, args in enumerate(commands):
        result = run_cli("-w", ws, "-o", "json", *args)
        assert result.code == (1 if i == 7 else 0), (args, result.stderr)  # the first check: nothing built yet
        data = result.json()
        assert data not in (None, [], {}), args
        assert non_camel_keys(data) == [], (args, non_camel_keys(data))
        seen.add(args[0])
    assert seen == {
        "versions", "config", "python", "lock", "check", "build", "verify", "activate", "publish", "matrix", "ci",
        "new", "cleanup",
    }  # fmt: skip


def test_lock_json_names_what_was_skipped_and_kept(workspace: Path, run_cli) -> None:
    [linux] = run_cli("-w", workspace, "-o", "json", "lock", VERSION, "-p", "linux-x64").json()
    assert [s["name"] for s in linux["skipped"]] == ["needs-winonly"]
    assert linux["kept"] == [
        {"name": "helper-lib", "reason": "comes with tool-a", "platform": "linux-x64", "requiredBy": ["tool-a"]}
    ]
    assert {p["name"] for p in linux["packages"]} == {"tool-a", "helper-lib"}


def test_config_show_keeps_the_config_files_keys_and_platform_maps(workspace: Path, run_cli) -> None:
    """The merged config is shown in the config files' own keys; maps keyed by platform keep those keys."""
    merged = run_cli("-w", workspace, "-o", "json", "config", "show", VERSION).json()
    assert merged["packages"]["dependencies"] == ["tool-a", "needs-winonly"]
    assert merged["packages"]["overrides"] == {"helper-lib": ">=0"}  # a package name as a key stays as written
    pinned = run_cli("-w", workspace, "-o", "json", "python", "pin", VERSION)
    assert pinned.code == 0, pinned.stderr
    assert set(pinned.json()["sha256"]) <= set(PLATFORM_KEYS)
