"""Config loading, validation and merge (runenv/config)."""

from __future__ import annotations

import json

import pytest

from runenv.config import load_runtime_config, merge
from runenv.config.load import validate
from runenv.errors import ConfigError
from runenv.workspace import Workspace
from tests.conftest import REPO


def loaded(ws_root, name="3.12.10"):
    ws = Workspace(ws_root)
    return load_runtime_config(ws, ws.runtime(name))


# --- merge, case by case ------------------------------------------------------------------------


def test_objects_merge_key_by_key_and_runtime_scalars_win():
    out = merge({"build": {"timeout": 10, "enableLogging": False}}, {"build": {"timeout": 20}})
    assert out == {"build": {"timeout": 20, "enableLogging": False}}


def test_runtime_dependencies_replace_shared_list(make_workspace):
    ws = make_workspace(
        shared={"packages": {"dependencies": ["numpy==2.2.6", "pandas==2.2.3"]}},
        runtimes={"3.12.10": {"packages": {"dependencies": ["scipy==1.15.3"]}}, "3.11.9": {}},
    )
    assert loaded(ws).config.packages.dependencies == ["scipy==1.15.3"]
    assert loaded(ws, "3.11.9").config.packages.dependencies == ["numpy==2.2.6", "pandas==2.2.3"]


def test_union_lists_keep_order_without_duplicates(make_workspace):
    ws = make_workspace(
        shared={
            "registries": {"additional": ["https://a.example/simple", "https://b.example/simple"]},
            "packages": {
                "noDeps": ["x"],
                "resolution": {"onlyBinaryList": ["numpy", "scipy"]},
                "copyFiles": [{"from": "a", "to": "b"}],
            },
        },
        runtimes={
            "3.12.10": {
                "registries": {"additional": ["https://c.example/simple", "https://a.example/simple"]},
                "packages": {
                    "noDeps": ["Y", "x"],
                    "resolution": {"onlyBinaryList": ["SciPy", "pandas"]},
                    "copyFiles": [{"from": "../a", "to": "b"}, {"from": "c", "to": "d"}],
                },
            }
        },
    )
    (ws / "a").write_text("")
    (ws / "python-3.12.10" / "c").write_text("")
    cfg = loaded(ws).config
    assert cfg.registries.additional == [
        "https://a.example/simple",
        "https://b.example/simple",
        "https://c.example/simple",
    ]
    assert cfg.packages.no_deps == ["x", "y"]
    assert cfg.packages.resolution.only_binary_list == ["numpy", "scipy", "pandas"]
    # Sources are relative to the declaring file; the same file named from both is one entry.
    assert [(c.from_, c.to) for c in cfg.packages.copy_files] == [("a", "b"), ("python-3.12.10/c", "d")]


def test_registries_default_and_platforms_replace(make_workspace):
    ws = make_workspace(
        shared={"registries": {"default": ["https://a.example/simple"]}, "build": {"platforms": ["linux-x64"]}},
        runtimes={
            "3.12.10": {
                "registries": {"default": ["https://b.example/simple"]},
                "build": {"platforms": ["windows-x64"]},
            }
        },
    )
    cfg = loaded(ws).config
    assert cfg.registries.default == ["https://b.example/simple"]
    assert cfg.build.platforms == ["windows-x64"]


def test_rule_maps_merge_recursively_across_name_spellings(make_workspace):
    ws = make_workspace(
        shared={"packages": {"skip": {"CuDF_cu12": {"macosx-x64": "shared reason"}}, "overrides": {"NumPy": "2.3.0"}}},
        runtimes={
            "3.12.10": {
                "packages": {"skip": {"cudf-cu12": {"windows-x64": "runtime reason"}}, "overrides": {"numpy": "2.3.1"}}
            }
        },
    )
    cfg = loaded(ws).config
    assert cfg.packages.skip == {"cudf-cu12": {"macosx-x64": "shared reason", "windows-x64": "runtime reason"}}
    assert cfg.packages.overrides == {"numpy": "2.3.1"}


def test_omitted_fields_take_defaults():
    cfg = validate({}, "x.json")
    assert cfg.build.timeout == 300 and cfg.build.parallel_downloads is True
    assert cfg.python.source == "pbs" and cfg.python.flavor == "install_only_stripped"
    assert cfg.build.platforms == ["linux-x64", "linux-aarch64", "macosx-x64", "macosx-aarch64", "windows-x64"]


def test_runtime_file_does_not_reset_shared_fields_it_omits(make_workspace):
    ws = make_workspace(shared={"build": {"timeout": 42}}, runtimes={"3.12.10": {"build": {"compression": "zst"}}})
    cfg = loaded(ws).config
    assert cfg.build.timeout == 42 and cfg.build.compression == "zst"


def test_digest_changes_with_content(make_workspace):
    ws = make_workspace(runtimes={"3.12.10": {"build": {"timeout": 1}}, "3.11.9": {"build": {"timeout": 2}}})
    assert loaded(ws).digest != loaded(ws, "3.11.9").digest
    assert loaded(ws).digest == loaded(ws).digest


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected", "hint"),
    [
        ({"packges": {}}, "packges: unknown key 'packges'", "did you mean 'packages'?"),
        ({"packages": {"forcesource": {}}}, "packages.forcesource: unknown key", "'forceSource'"),
        ({"build": {"paralelDownloads": True}}, "build.paralelDownloads: unknown key", "'parallelDownloads'"),
        ({"packages": {"skip": {"x": {"linux-arm64": "r"}}}}, "unknown platform key 'linux-arm64'", "'linux-aarch64'"),
        (
            {"packages": {"platformSpecific": {"tf": {"linux-x64": {"acton": "skip"}}}}},
            "packages.platformSpecific.tf.linux-x64.acton: unknown key",
            "'action'",
        ),
        ({"packages": {"platformSpecific": {"windows-x86": {}}}}, "unknown platform key 'windows-x86'", None),
        ({"packages": {"dependencies": ["numpy", "pandas=="]}}, "packages.dependencies[1]: invalid requirement", None),
        ({"packages": {"overrides": {"numpy": "not a version!"}}}, "packages.overrides.numpy: invalid override", None),
        ({"packages": {"overrides": {"numpy": ""}}}, "packages.overrides.numpy: empty override", None),
        ({"build": {"timeout": "soon"}}, "build.timeout:", None),
        ({"python": {"sha256": {"linux-x64": "abc"}}}, "python.sha256.linux-x64: invalid sha256", None),
        ({"registries": {"additional": ["not-a-url"]}}, "registries.additional[0]: invalid index URL", None),
    ],
)
def test_schema_errors_name_file_path_and_hint(data, expected, hint):
    with pytest.raises(ConfigError) as info:
        validate(data, "cfg.json")
    assert info.value.message.startswith("cfg.json: ")
    assert expected in info.value.message
    assert "\n" not in info.value.message
    if hint:
        assert hint in info.value.message


def test_malformed_json_names_file_line_and_column(make_workspace):
    ws = make_workspace(runtimes={"3.12.10": '{\n  "build": {\n    "timeout": 3,\n  }\n}'})
    with pytest.raises(ConfigError) as info:
        loaded(ws)
    assert "python-3.12.10/config.json:4:3: malformed JSON" in info.value.message


def test_top_level_must_be_an_object(make_workspace):
    ws = make_workspace(shared="[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        loaded(ws)


def test_errors_name_the_file_that_holds_them(make_workspace):
    ws = make_workspace(shared={"bild": {}})
    with pytest.raises(ConfigError, match=r"shared-config.json: bild: unknown key"):
        loaded(ws)


# --- the repo's own configs ------------------------------------------------------------------------


def test_committed_schema_matches_the_models(run_cli):
    result = run_cli("config", "schema")
    assert result.code == 0
    committed = json.loads((REPO / "schema" / "runenv-config.schema.json").read_text())
    assert json.loads(result.stdout) == committed, "regenerate: runenv config schema > schema/runenv-config.schema.json"


def test_repo_configs_pin_a_pbs_release_and_leave_default_index_empty():
    ws = Workspace(REPO)
    names = [rt.name for rt in ws.runtimes()]
    assert {"3.12.10", "3.11.9", "3.10.18"} <= set(names)
    for rt in ws.runtimes():
        cfg = load_runtime_config(ws, rt).config
        assert cfg.python.release, rt.name
        assert cfg.registries.default == []
        assert "numpy" in " ".join(cfg.packages.dependencies)
