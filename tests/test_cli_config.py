"""`runenv versions` and `runenv config …` through the CLI, including every error class."""

from __future__ import annotations

import json

import pytest

from runenv.platforms import PLATFORM_KEYS
from tests.conftest import REPO, run_runenv


def test_versions_lists_runtimes_and_variants(make_workspace, run_cli):
    runtimes = {
        "3.12.10": {},
        "3.12.10-slim": {},
        "3.10.18": {},
        "3.12.10-scientific-slim": {},
        "3.12.10-torch.cu_126": {},
    }
    ws = make_workspace(runtimes=runtimes)
    (ws / "python-notaversion").mkdir()
    (ws / "python-3.9").mkdir()
    (ws / "python-3.11.9").mkdir()  # a runtime name, but no config.json
    (ws / "python-readme.txt").write_text("a file, not a directory")
    result = run_cli("--workspace", ws, "--output", "json", "versions")
    assert result.code == 0
    rows = result.json()
    assert [(r["name"], r["python"], r["variant"]) for r in rows] == [
        ("3.10.18", "3.10.18", None),
        ("3.12.10", "3.12.10", None),
        ("3.12.10-scientific-slim", "3.12.10", "scientific-slim"),
        ("3.12.10-slim", "3.12.10", "slim"),
        ("3.12.10-torch.cu_126", "3.12.10", "torch.cu_126"),
    ]
    warnings = result.stderr.splitlines()
    assert len(warnings) == 3 and all(w.startswith("warning: python-") for w in warnings)
    assert "python-3.9/ ignored: not a runtime name" in result.stderr
    assert "python-notaversion/ ignored: not a runtime name" in result.stderr
    assert "python-3.11.9/ ignored: no config.json" in result.stderr


def test_hyphenated_variant_is_a_runtime_everywhere(make_workspace, run_cli):
    ws = make_workspace(runtimes={"3.12.10-scientific-slim": {"build": {"compression": "zst"}}})
    (ws / "python-3.12").mkdir()
    shown = run_cli("-w", ws, "-o", "json", "config", "show", "python-3.12.10-scientific-slim")
    assert shown.code == 0 and shown.json()["build"]["compression"] == "zst"
    validate = run_cli("-w", ws, "-o", "json", "config", "validate")
    assert validate.code == 0 and validate.json()["runtimes"] == [
        {"runtime": "3.12.10-scientific-slim", "valid": True, "platforms": list(PLATFORM_KEYS)}
    ]
    assert validate.json()["ignored"] == [
        {
            "directory": str(ws / "python-3.12"),
            "reason": "not a runtime name (expected python-X.Y.Z or python-X.Y.Z-VARIANT)",
        }
    ]
    text = run_cli("-w", ws, "config", "validate")
    assert text.code == 0 and "warning: python-3.12/ ignored" in text.stderr
    unknown = run_cli("-w", ws, "config", "show", "3.12")
    assert unknown.code == 2 and "python-3.12/ is not a runtime" in unknown.stderr


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
    runtimes = {"3.12.10": {"python": {"source": "local"}}, "3.11.9": {}, "3.11.99": {}}
    ws = make_workspace(shared={"python": {}}, runtimes=runtimes)
    result = run_cli("-w", ws, "config", "validate")
    assert result.code == 2
    assert "valid on all 5 platforms: 3.11.9" in result.stdout  # no python section: the catalogue's release
    assert "python-3.11.99/config.json: Python 3.11.99 is not in runenv's PBS catalogue" in result.stderr
    assert "3.12.10" in result.stderr and "python.path" in result.stderr


def test_repo_plan_for_linux_aarch64_applies_shared_rules(run_cli):
    result = run_cli("-w", REPO, "config", "show", "3.12.10", "--platform", "linux-aarch64", "--output", "json")
    assert result.code == 0, result.stderr
    plan = result.json()
    names = {p["name"]: p for p in plan["packages"]}
    assert {"numpy", "pandas", "scipy", "scikit-learn", "polars", "pyarrow", "biopython"} <= set(names)
    assert names["numpy"]["fallback"] == "skip" and plan["onlyBinary"] == ["numpy", "scipy"]
    # Skip rules for packages that are not direct dependencies only matter if something needs them;
    # forceSource of parasail (not a dependency of this runtime) acts on direct dependencies only.
    assert {e["name"] for e in plan["skipRules"]} >= {"cudf-cu12", "cuml-cu12"} and plan["excluded"] == []
    assert "parasail" not in plan["noBinary"]


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


@pytest.mark.parametrize(
    ("declared_in", "entry", "message"),
    [
        ("shared", {"from": "/etc/passwd", "to": "etc/x"}, "packages.copyFiles[0].from: absolute copyFiles source"),
        ("runtime", {"from": "../../../etc/passwd", "to": "etc/x"}, "'../../../etc/passwd' leaves the workspace"),
        ("shared", {"from": "", "to": "etc/x"}, "packages.copyFiles[0].from: empty copyFiles source"),
        ("runtime", {"from": "..", "to": "etc/x"}, "'..' is the workspace or runenv's own output"),
        ("shared", {"from": "dist", "to": "etc/x"}, "'dist' is the workspace or runenv's own output"),
        ("runtime", {"from": "escape", "to": "etc/x"}, "'escape' resolves outside the workspace"),
        ("runtime", {"from": "tree", "to": "etc/x"}, "'tree' holds sub/passwd, a symlink to /etc/passwd outside"),
        ("runtime", {"from": "loop", "to": "etc/x"}, "'loop' holds again, a symlink to a directory above it"),
        ("runtime", {"from": "ok.txt", "to": "../../outside"}, "copyFiles target '../../outside' is not inside"),
        ("runtime", {"from": "ok.txt", "to": "{site-packages}/../../../../x"}, "is not inside the runtime"),
        (
            "platform",
            {"from": "missing", "to": "x"},
            "packages.platformSpecific.linux-x64.copyFiles[0].from: 'missing'",
        ),
    ],
)
def test_copy_files_outside_the_workspace_are_refused(make_workspace, run_cli, tmp_path, declared_in, entry, message):
    """Issue 15: host files, the whole workspace or runenv's outputs never become copyFiles sources."""
    copy = {"copyFiles": [entry]}
    block = {"platformSpecific": {"linux-x64": copy}}
    shared = {"packages": copy} if declared_in == "shared" else {}
    own = {} if shared else {"packages": copy if declared_in == "runtime" else block}
    ws = make_workspace(shared=shared, runtimes={"3.12.10": own})
    (ws / "python-3.12.10" / "ok.txt").write_text("ok\n")
    (ws / "python-3.12.10" / "escape").symlink_to(tmp_path)
    (ws / "python-3.12.10" / "tree" / "sub").mkdir(parents=True)
    (ws / "python-3.12.10" / "tree" / "sub" / "passwd").symlink_to("/etc/passwd")
    (ws / "python-3.12.10" / "loop").mkdir()
    (ws / "python-3.12.10" / "loop" / "again").symlink_to("..")
    (ws / "dist").mkdir()
    result = run_cli("-w", ws, "config", "validate")
    assert result.code == 2
    [line] = result.stderr.splitlines()
    declaring = "shared-config.json" if declared_in == "shared" else "python-3.12.10/config.json"
    assert line.startswith(f"error: {ws / declaring}: ") and message in line, line


def test_copy_files_sources_resolve_from_the_declaring_file(make_workspace, run_cli):
    shared = {"packages": {"copyFiles": [{"from": "assets/a.txt", "to": "a.txt"}]}}
    own = {
        "packages": {"copyFiles": [{"from": "linux-x64/bin/", "to": "bin"}, {"from": "../assets/a.txt", "to": "a.txt"}]}
    }
    ws = make_workspace(shared=shared, runtimes={"3.12.10-atls": own})
    (ws / "assets").mkdir()
    (ws / "assets" / "a.txt").write_text("a\n")
    (ws / "python-3.12.10-atls" / "linux-x64" / "bin").mkdir(parents=True)
    shown = run_cli("-w", ws, "-o", "json", "config", "show", "3.12.10-atls")
    assert shown.code == 0, shown.stderr
    # Shown relative to the workspace root; the same file named from both configs is one entry.
    assert shown.json()["packages"]["copyFiles"] == [
        {"from": "assets/a.txt", "to": "a.txt"},
        {"from": "python-3.12.10-atls/linux-x64/bin", "to": "bin"},
    ]
