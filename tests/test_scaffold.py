"""`runenv new`: a minimal valid runtime config, never overwriting one."""

from __future__ import annotations

import json

from tests.conftest import REPO


def test_new_runtime_validates_and_lists(make_workspace, run_cli):
    ws = make_workspace(runtimes={"3.12.10": {}})
    result = run_cli("-w", ws, "-o", "json", "new", "3.13.5")
    assert result.code == 0, result.stderr
    # A catalogued version needs no python section: the catalogue's newest release that ships it is used.
    assert result.json()["release"] == "20250723" and result.json()["catalogued"]
    config = json.loads((ws / "python-3.13.5" / "config.json").read_text())
    assert config == {"$schema": "../schema/runenv-config.schema.json"}
    validate = run_cli("-w", ws, "-o", "json", "config", "validate")
    assert validate.code == 0
    assert {"runtime": "3.13.5", "valid": True} in [
        {"runtime": r["runtime"], "valid": r["valid"]} for r in validate.json()["runtimes"]
    ]
    assert [r["name"] for r in run_cli("-w", ws, "-o", "json", "versions").json()] == ["3.12.10", "3.13.5"]


def test_new_variant_unknown_version_and_explicit_release(make_workspace, run_cli):
    ws = make_workspace()
    unknown = run_cli("-w", ws, "new", "3.12.99-slim")
    assert unknown.code == 2 and "Python 3.12.99 is not in runenv's PBS catalogue" in unknown.stderr
    assert "newest catalogued 3.12 releases: 3.12.14, 3.12.13, 3.12.12" in unknown.stderr
    assert not (ws / "python-3.12.99-slim").exists()
    pinned = run_cli("-w", ws, "-o", "json", "new", "python-3.11.20-scientific-slim", "--release", "20990101")
    assert pinned.code == 0 and pinned.json()["release"] == "20990101" and not pinned.json()["catalogued"]
    assert "not catalogued" in pinned.stderr and "runenv python pin 3.11.20-scientific-slim" in pinned.stderr
    config = json.loads((ws / "python-3.11.20-scientific-slim" / "config.json").read_text())
    assert config["python"]["release"] == "20990101"


def test_new_refuses_to_overwrite_and_bad_names(make_workspace, run_cli):
    ws = make_workspace(runtimes={"3.12.10": {"python": {"release": "20250517"}, "packages": {"noDeps": ["x"]}}})
    config = ws / "python-3.12.10" / "config.json"
    before = config.read_text()
    result = run_cli("-w", ws, "new", "3.12.10")
    assert result.code == 2 and "already exists" in result.stderr and config.read_text() == before
    for bad in ("3.12", "3.12.x", "3.12.10-", "3.12.10-bad/name", "3.12.10-" + "x" * 300, "3.12.10--x"):
        result = run_cli("-w", ws, "new", bad)
        assert result.code == 2 and "invalid runtime name" in result.stderr, bad
        assert len(result.stderr.splitlines()) == 2 and "Traceback" not in result.stderr
    assert run_cli("-w", ws, "new", "3.12.11", "--release", "latest").code == 2
    assert sorted(p.name for p in ws.iterdir()) == ["python-3.12.10", "shared-config.json"]


def test_schema_pointer_resolves_in_this_repository():
    assert (REPO / "python-3.12.10" / "../schema/runenv-config.schema.json").resolve().is_file()


def test_new_writes_the_schema_its_config_points_at_once(make_workspace, run_cli):
    """The `$schema` pointer resolves in a user's workspace: the first `new` writes the schema, later ones keep it."""
    ws = make_workspace(runtimes={})
    first = run_cli("-w", ws, "-o", "json", "new", "3.13.5")
    schema = ws / "schema" / "runenv-config.schema.json"
    assert first.code == 0 and first.json()["schema"] == str(schema)
    pointed = (ws / "python-3.13.5" / json.loads((ws / "python-3.13.5" / "config.json").read_text())["$schema"])
    assert pointed.resolve() == schema.resolve()
    assert json.loads(schema.read_text()) == json.loads(run_cli("config", "schema").stdout)
    schema.write_text('{"title": "edited by the user"}')
    second = run_cli("-w", ws, "-o", "json", "new", "3.12.10")
    assert second.code == 0 and second.json()["schema"] is None
    assert schema.read_text() == '{"title": "edited by the user"}'
