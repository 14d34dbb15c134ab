"""`runenv check`: built or not, size, hash, age, and staleness against the config and lock files."""

from __future__ import annotations

import os
import time

from tests.conftest import write_json
from tests.helpers.runtime_prefix import (  # noqa: F401  (fixtures)
    PY_VERSION,
    STEM,
    built_workspace,
    runtime_tarball,
    runtime_template,
)


def _age(path, seconds):
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_check_reports_built_and_fresh(built_workspace, run_cli):
    for config in (built_workspace / "shared-config.json", built_workspace / f"python-{PY_VERSION}" / "config.json"):
        _age(config, 3600)
    result = run_cli("-w", built_workspace, "-o", "json", "check")
    assert result.code == 0, result.stderr
    data = result.json()
    [row] = data["artifacts"]
    tarball = built_workspace / "dist" / f"{STEM}.tar.gz"
    assert data["ok"] and row["built"] and row["fresh"] and row["platform"] == "linux-x64"
    assert row["path"] == str(tarball) and row["size"] == tarball.stat().st_size
    assert row["sha256"] == (built_workspace / "dist" / f"{STEM}.tar.gz.sha256").read_text().split()[0]
    assert row["newerInputs"] == [] and 0 <= row["ageSeconds"] < 3600


def test_check_flags_inputs_newer_than_the_artifact(built_workspace, run_cli):
    _age(built_workspace / "dist" / f"{STEM}.tar.gz", 600)
    write_json(built_workspace / f"python-{PY_VERSION}" / "pylock.linux-x64.toml", "lock-version = '1.0'\n")
    result = run_cli("-w", built_workspace, "-o", "json", "check", PY_VERSION)
    assert result.code == 1
    [row] = result.json()["artifacts"]
    assert row["built"] and not row["fresh"]
    assert f"python-{PY_VERSION}/pylock.linux-x64.toml" in row["newerInputs"]
    assert "shared-config.json" in row["newerInputs"]
    text = run_cli("-w", built_workspace, "check")
    assert text.code == 1 and "stale (" in text.stdout and "pylock.linux-x64.toml" in text.stdout


def test_check_lists_every_configured_platform_and_fails_on_missing(make_workspace, run_cli):
    ws = make_workspace(runtimes={"3.12.10": {"build": {"platforms": ["linux-x64", "windows-x64"]}}, "3.13.5": {}})
    result = run_cli("-w", ws, "-o", "json", "check", "3.12.10")
    assert result.code == 1
    rows = result.json()["artifacts"]
    assert [(r["platform"], r["built"], r["size"]) for r in rows] == [
        ("linux-x64", False, None),
        ("windows-x64", False, None),
    ]
    assert rows[1]["path"].endswith("dist/python-3.12.10-windows-x64.tar.gz")
    text = run_cli("-w", ws, "check")
    assert text.code == 1 and text.stdout.count("missing") == 2 + 5  # 3.13.5 builds every platform by default
