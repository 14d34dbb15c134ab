"""`runenv check`: built or not, size, hash, age, and staleness against the config and lock files."""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import write_json
from tests.helpers import HOST
from tests.helpers.dist import make_artifact
from tests.helpers.pbs import VERSION
from tests.helpers.runtime_prefix import PLATFORM, PY_VERSION, STEM


def _age(path, seconds):
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_check_reports_built_and_fresh(runtime_workspace, run_cli):
    result = run_cli("-w", runtime_workspace, "-o", "json", "check")
    assert result.code == 0, result.stderr
    data = result.json()
    [row] = data["artifacts"]
    tarball = runtime_workspace / "dist" / f"{STEM}.tar.gz"
    assert data["ok"] and row["built"] and row["fresh"] and row["platform"] == PLATFORM
    assert row["path"] == str(tarball) and row["size"] == tarball.stat().st_size
    assert row["sha256"] == (runtime_workspace / "dist" / f"{STEM}.tar.gz.sha256").read_text().split()[0]
    assert row["changedInputs"] == [] and 0 <= row["ageSeconds"] < 3600


def test_file_times_never_decide_freshness(runtime_workspace, run_cli):
    """Touched configs, a relock with the same content and an old tarball (dist/ restored from a cache) stay fresh."""
    lock = runtime_workspace / f"python-{PY_VERSION}" / f"pylock.{PLATFORM}.toml"
    before = lock.read_bytes(), lock.stat().st_mtime_ns
    _age(runtime_workspace / "dist" / f"{STEM}.tar.gz", 7200)
    _age(lock, 3600)
    stamp = lock.stat().st_mtime_ns
    for _ in range(2):  # `runenv lock` twice after the build
        assert run_cli("-w", runtime_workspace, "lock", PY_VERSION).code == 0
        assert lock.read_bytes() == before[0] and lock.stat().st_mtime_ns == stamp  # identical content: untouched
    for config in (
        runtime_workspace / "shared-config.json",
        runtime_workspace / f"python-{PY_VERSION}" / "config.json",
    ):
        os.utime(config)
    result = run_cli("-w", runtime_workspace, "-o", "json", "check")
    assert result.code == 0, result.stdout
    assert result.json()["artifacts"][0]["changedInputs"] == []
    assert "fresh" in run_cli("-w", runtime_workspace, "check").stdout


def test_check_names_the_input_whose_content_changed(runtime_workspace, run_cli):
    runtime_dir = runtime_workspace / f"python-{PY_VERSION}"
    lock = runtime_dir / f"pylock.{PLATFORM}.toml"
    lock.write_text(lock.read_text() + "# edited\n")
    result = run_cli("-w", runtime_workspace, "-o", "json", "check", PY_VERSION)
    assert result.code == 1
    [row] = result.json()["artifacts"]
    assert row["built"] and not row["fresh"] and row["changedInputs"] == ["lock"]
    write_json(runtime_dir / "config.json", {"build": {"platforms": [PLATFORM], "timeout": 301}})
    [row] = run_cli("-w", runtime_workspace, "-o", "json", "check", PY_VERSION).json()["artifacts"]
    assert row["changedInputs"] == ["config", "lock"]
    write_json(runtime_workspace / "checks" / f"{PLATFORM}.json", {})
    text = run_cli("-w", runtime_workspace, "check")
    assert text.code == 1 and "stale (changed: config, lock, verify allowlist" in text.stdout


def test_artifact_without_recorded_inputs_is_stale(runtime_workspace, run_cli):
    manifest = runtime_workspace / "dist" / f"{STEM}.manifest.toml"
    manifest.write_text(manifest.read_text().split("[inputs]")[0])
    [row] = run_cli("-w", runtime_workspace, "-o", "json", "check").json()["artifacts"]
    assert not row["fresh"] and row["changedInputs"] == ["unknown (the manifest records no inputs)"]


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


def test_a_tarball_built_before_the_compression_changed_is_built_but_stale(runtime_workspace, run_cli):
    write_json(
        runtime_workspace / f"python-{PY_VERSION}" / "config.json",
        {"build": {"platforms": [PLATFORM], "compression": "zst"}},
    )
    result = run_cli("-w", runtime_workspace, "-o", "json", "check", PY_VERSION)
    assert result.code == 1
    [row] = result.json()["artifacts"]
    assert row["built"] and row["path"] == str(runtime_workspace / "dist" / f"{STEM}.tar.gz")
    assert not row["fresh"] and "config" in row["changedInputs"]


def test_a_changed_local_interpreter_makes_the_artifact_stale(make_workspace, run_cli, tmp_path):
    """The manifest records the local interpreter's executable by content: other bytes there, and `check` (and so
    `publish`) name the interpreter, though no config or lock byte changed."""
    prefix = tmp_path / "prefix"
    exe = prefix / "bin" / "python3.12"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\necho 3.12.10\n")
    ws = make_workspace(
        shared={"build": {"platforms": [HOST, "windows-x64"]}},  # a local runtime counts on the host only
        runtimes={"3.12.10": {"python": {"source": "local", "path": str(prefix)}}},
    )
    make_artifact(ws, "3.12.10", HOST)
    [row] = run_cli("-w", ws, "-o", "json", "check").json()["artifacts"]
    assert row["built"] and row["changedInputs"] == [] and "local interpreter" in row["note"]
    exe.write_text("#!/bin/sh\necho 3.12.10  # rebuilt\n")
    [row] = run_cli("-w", ws, "-o", "json", "check").json()["artifacts"]
    assert not row["fresh"] and row["changedInputs"] == ["interpreter"]
    assert "changed: interpreter" in run_cli("-w", ws, "check").stdout
    # Where the prefix cannot be seen (publish on another machine), the interpreter cannot be told apart: the
    # artifact is judged by its other inputs, as is one whose manifest predates the interpreter input.
    exe.unlink()
    assert run_cli("-w", ws, "-o", "json", "check").json()["artifacts"][0]["changedInputs"] == []
    exe.write_text("#!/bin/sh\necho 3.12.10  # rebuilt\n")
    manifest = ws / "dist" / f"python-3.12.10-{HOST}.manifest.toml"
    manifest.write_text("\n".join(line for line in manifest.read_text().splitlines() if "interpreter =" not in line))
    assert run_cli("-w", ws, "-o", "json", "check").json()["artifacts"][0]["changedInputs"] == []


def test_another_catalogue_release_makes_an_unpinned_runtime_stale(make_workspace, run_cli, pbs_mirror, tmp_path):
    """A runtime without python.release takes the catalogue's release: a catalogue (or runenv upgrade) that
    picks another release changes the interpreter, not the config."""
    ws = make_workspace(shared={"python": {}, "build": {"platforms": [HOST]}}, runtimes={VERSION: {}})
    make_artifact(ws, VERSION, HOST)
    assert run_cli("-w", ws, "-o", "json", "check").json()["artifacts"][0]["changedInputs"] == []
    catalogue = pbs_mirror.write_catalogue(tmp_path / "catalogue.json")  # the mirror's one release only
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RUNENV_PBS_CATALOGUE", str(catalogue))
        [row] = run_cli("-w", ws, "-o", "json", "check").json()["artifacts"]
    assert row["changedInputs"] == ["interpreter"]
