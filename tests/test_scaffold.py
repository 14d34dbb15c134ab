"""`runenv new`: a minimal valid runtime config, never overwriting one."""

from __future__ import annotations

import json

from tests.conftest import REPO


def test_new_runtime_validates_and_lists(make_workspace, run_cli):
    ws = make_workspace(runtimes={"3.12.10": {}})
    result = run_cli("-w", ws, "-o", "json", "new", "3.13.5")
    assert result.code == 0, result.stderr
    assert result.json()["release"] == "20250612" and result.json()["releaseKnown"]
    assert "runenv python pin 3.13.5" in result.stderr
    config = json.loads((ws / "python-3.13.5" / "config.json").read_text())
    assert config == {"$schema": "../schema/runenv-config.schema.json", "python": {"release": "20250612"}}
    validate = run_cli("-w", ws, "-o", "json", "config", "validate")
    assert validate.code == 0
    assert {"runtime": "3.13.5", "valid": True} in [
        {"runtime": r["runtime"], "valid": r["valid"]} for r in validate.json()["runtimes"]
    ]
    assert [r["name"] for r in run_cli("-w", ws, "-o", "json", "versions").json()] == ["3.12.10", "3.13.5"]


def test_new_variant_unknown_version_and_explicit_release(make_workspace, run_cli):
    ws = make_workspace()
    guessed = run_cli("-w", ws, "new", "3.14.9-slim")
    assert guessed.code == 0 and "not checked to ship Python 3.14.9" in guessed.stderr
    assert (ws / "python-3.14.9-slim" / "config.json").is_file()
    pinned = run_cli("-w", ws, "-o", "json", "new", "python-3.11.20", "--release", "20990101")
    assert pinned.code == 0 and pinned.json()["release"] == "20990101"
    assert json.loads((ws / "python-3.11.20" / "config.json").read_text())["python"]["release"] == "20990101"


def test_new_refuses_to_overwrite_and_bad_names(make_workspace, run_cli):
    ws = make_workspace(runtimes={"3.12.10": {"python": {"release": "20250517"}, "packages": {"noDeps": ["x"]}}})
    config = ws / "python-3.12.10" / "config.json"
    before = config.read_text()
    result = run_cli("-w", ws, "new", "3.12.10")
    assert result.code == 2 and "already exists" in result.stderr and config.read_text() == before
    for bad in ("3.12", "3.12.x", "3.12.10-", "3.12.10-bad/name"):
        result = run_cli("-w", ws, "new", bad)
        assert result.code == 2 and "invalid runtime name" in result.stderr, bad
    assert run_cli("-w", ws, "new", "3.12.11", "--release", "latest").code == 2
    assert sorted(p.name for p in ws.iterdir()) == ["python-3.12.10", "shared-config.json"]


def test_schema_pointer_resolves_in_this_repository():
    assert (REPO / "python-3.12.10" / "../schema/runenv-config.schema.json").resolve().is_file()
