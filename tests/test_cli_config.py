"""`runenv versions` and `runenv config …` through the CLI, including every error class."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, run_runenv


def test_versions_lists_runtimes_and_variants(make_workspace, run_cli):
    ws = make_workspace(runtimes={"3.12.10": {}, "3.12.10-slim": {}, "3.10.18": {}})
    (ws / "python-notaversion").mkdir()
    (ws / "python-3.9").mkdir()
    result = run_cli("--workspace", ws, "--output", "json", "versions")
    assert result.code == 0
    rows = result.json()
    assert [(r["name"], r["python"]) for r in rows] == [
        ("3.10.18", "3.10.18"),
        ("3.12.10", "3.12.10"),
        ("3.12.10-slim", "3.12.10"),
    ]
    assert rows[2]["variant"] == "slim"


def test_global_options_work_after_the_command(make_workspace, run_cli):
    ws = make_workspace()
    assert run_cli("versions", "--workspace", ws, "-o", "json").json()[0]["name"] == "3.12.10"


def test_workspace_found_by_walking_up(make_workspace):
    ws = make_workspace()
    deep = ws / "python-3.12.10" / "sub"
    deep.mkdir()
    result = run_runenv("-o", "json", "versions", cwd=deep)
    assert result.code == 0, result.stderr
    assert result.json()[0]["name"] == "3.12.10"


def test_no_workspace_is_usage_error(tmp_path):
    result = run_runenv("versions", cwd=tmp_path)
    assert result.code == 2
    assert "no shared-config.json" in result.stderr and "Traceback" not in result.stderr


def test_config_show_merged(make_workspace, run_cli):
    ws = make_workspace(shared={"build": {"timeout": 5}}, runtimes={"3.12.10": {"build": {"compression": "zst"}}})
    data = run_cli("-w", ws, "-o", "json", "config", "show", "3.12.10").json()
    assert data["build"]["timeout"] == 5 and data["build"]["compression"] == "zst"
    assert "$schema" not in data


def test_config_show_plan_json_shape(make_workspace, run_cli):
    ws = make_workspace(
        shared={
            "registries": {"additional": ["https://extra.example/simple"]},
            "packages": {
                "dependencies": ["NumPy==2.2.6", "tensorflow==2.19.0"],
                "platformSpecific": {"tensorflow": {"linux-aarch64": {"action": "skip", "reason": "r"}}},
                "resolution": {"onlyBinaryList": ["numpy"], "strictMissing": True},
            },
        },
    )
    result = run_cli("-w", ws, "config", "show", "3.12.10", "--platform", "linux-aarch64", "--output", "json")
    assert result.code == 0, result.stderr
    plan = result.json()
    assert plan["runtime"] == "3.12.10" and plan["platform"] == "linux-aarch64"
    assert plan["registries"] == ["https://extra.example/simple"]
    assert plan["packages"] == [
        {"name": "numpy", "requirement": "NumPy==2.2.6", "action": "wheel", "fallback": "error", "reason": None},
        {"name": "tensorflow", "requirement": "tensorflow==2.19.0", "action": "skip", "fallback": None, "reason": "r"},
    ]


def test_config_show_plan_text(make_workspace, run_cli):
    ws = make_workspace(
        shared={"packages": {"dependencies": ["numpy", "pandas"], "skip": {"numpy": {"linux-x64": "gone"}}}}
    )
    result = run_cli("-w", ws, "config", "show", "3.12.10", "-p", "linux-x64")
    assert result.code == 0
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert rows["numpy"] == ["skip", "gone"]
    assert rows["pandas"][0] == "wheel"


def test_config_show_never_prints_index_credentials(make_workspace, run_cli):
    ws = make_workspace(shared={"registries": {"additional": ["https://user:s3cret@idx.example/simple"]}})
    for args in (
        ["config", "show", "3.12.10"],
        ["config", "show", "3.12.10", "-p", "linux-x64"],
        ["-o", "json", "config", "show", "3.12.10", "-p", "linux-x64"],
    ):
        result = run_cli("-w", ws, *args)
        assert result.code == 0
        assert "s3cret" not in result.stdout + result.stderr
        assert "idx.example/simple" in result.stdout


def test_validate_catches_configs_that_cannot_build(make_workspace, run_cli):
    ws = make_workspace(shared={"python": {}}, runtimes={"3.12.10": {"python": {"source": "local"}}, "3.11.9": {}})
    result = run_cli("-w", ws, "config", "validate")
    assert result.code == 2
    assert "python.release is not set for runtime 3.11.9" in result.stderr
    assert "3.12.10" in result.stderr and "python.path" in result.stderr


def test_repo_plan_for_linux_aarch64_applies_shared_rules(run_cli):
    result = run_cli("-w", REPO, "config", "show", "3.12.10", "--platform", "linux-aarch64", "--output", "json")
    assert result.code == 0, result.stderr
    plan = result.json()
    names = {p["name"]: p for p in plan["packages"]}
    assert {"numpy", "pandas", "scipy", "scikit-learn", "polars", "pyarrow", "biopython"} <= set(names)
    assert names["numpy"]["fallback"] == "skip" and plan["onlyBinary"] == ["numpy", "scipy"]
    assert {e["name"] for e in plan["excluded"]} >= {"cudf-cu12", "cuml-cu12"}
    assert "parasail" in plan["noBinary"]


def test_repo_configs_validate(run_cli):
    result = run_cli("-w", REPO, "config", "validate")
    assert result.code == 0, result.stderr
    result = run_cli("-w", REPO, "-o", "json", "config", "validate")
    assert result.json()["valid"] is True and len(result.json()["runtimes"]) >= 3


def test_schema_is_json_schema_with_all_sections(run_cli):
    schema = run_cli("config", "schema").json()
    assert set(schema["properties"]) >= {"python", "registries", "packages", "build"}
    assert schema["additionalProperties"] is False


ERROR_CASES = {
    "malformed json": ({}, {"3.12.10": '{"build": {"timeout": 3,}}'}, ["config.json:1:", "malformed JSON"]),
    "unknown key": (
        {"packages": {"dependecies": []}},
        None,
        ["shared-config.json", "packages.dependecies", "did you mean 'dependencies'"],
    ),
    "unknown platform key": (
        {"packages": {"skip": {"a": {"mac-arm": "x"}}}},
        None,
        ["packages.skip.a", "unknown platform key"],
    ),
    "invalid requirement": (
        {},
        {"3.12.10": {"packages": {"dependencies": ["numpy>>2"]}}},
        ["python-3.12.10/config.json", "packages.dependencies[0]", "invalid requirement"],
    ),
    "timeout as a string": (
        {"build": {"timeout": "300"}},
        None,
        ["shared-config.json", "build.timeout", "integer"],
    ),
    "timeout as a boolean": ({"build": {"timeout": True}}, None, ["build.timeout", "integer"]),
    "timeout too large": ({"build": {"timeout": 10**6}}, None, ["build.timeout", "less than or equal to 86400"]),
    "JSON nested too deep": (
        '{"python": {"release": "20250517"}, "x": ' + "[" * 2000 + "]" * 2000 + "}",
        None,
        ["shared-config.json", "nested too deeply"],
    ),
    "duplicate JSON key": (
        '{"python": {"release": "20250517"}, "build": {"timeout": 5, "timeout": 7}}',
        None,
        ["shared-config.json", "duplicate key 'timeout'", "build"],
    ),
    "conflicting rule": (
        {
            "packages": {
                "dependencies": ["x"],
                "skip": {"x": {"linux-x64": "a"}},
                "forceSource": {"x": {"linux-x64": "b"}},
            }
        },
        None,
        ["conflicting rules for x on linux-x64"],
    ),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_bad_input_is_one_line_exit_2_nothing_written(make_workspace, case):
    shared, runtimes, expected = ERROR_CASES[case]
    ws = make_workspace(shared=shared, runtimes=runtimes)
    before = sorted(p.relative_to(ws) for p in ws.rglob("*"))
    for args in (["config", "validate"], ["config", "show", "3.12.10", "--platform", "linux-x64"]):
        result = run_runenv("-w", ws, *args)
        assert result.code == 2, (args, result.stderr)
        first = result.stderr.splitlines()[0]
        for text in expected:
            assert text in first, (text, result.stderr)
        assert "Traceback" not in result.stderr
    assert sorted(p.relative_to(ws) for p in ws.rglob("*")) == before


def test_unknown_runtime_and_platform_exit_2(make_workspace, run_cli):
    ws = make_workspace()
    result = run_cli("-w", ws, "config", "show", "3.99.0")
    assert result.code == 2 and "unknown runtime '3.99.0'" in result.stderr and "3.12.10" in result.stderr
    result = run_cli("-w", ws, "config", "show", "3.12.10", "--platform", "linux-arm64")
    assert result.code == 2 and "unknown platform 'linux-arm64'" in result.stderr


def test_bad_usage_exit_2(run_cli):
    assert run_cli("config", "show").code == 2
    assert run_cli("--output", "yaml", "versions").code == 2


def test_validate_json_reports_invalid_runtime(make_workspace, run_cli):
    ws = make_workspace(runtimes={"3.12.10": {}, "3.11.9": {"bogus": 1}})
    result = run_cli("-w", ws, "-o", "json", "config", "validate")
    assert result.code == 2
    data = json.loads(result.stdout)
    assert data["valid"] is False
    assert [r["valid"] for r in data["runtimes"]] == [False, True]
