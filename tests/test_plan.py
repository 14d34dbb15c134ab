"""Plan decisions per (runtime, platform) (runenv/plan.py)."""

from __future__ import annotations

import pytest

from runenv.config import load_runtime_config
from runenv.errors import ConfigError, UsageError
from runenv.plan import build_plan
from runenv.workspace import Workspace


def plan_for(make_workspace, packages, platform="linux-x64", runtime_packages=None, files=(), **shared):
    ws_root = make_workspace(
        shared={"packages": packages, **shared},
        runtimes={"3.12.10": {"packages": runtime_packages} if runtime_packages else {}},
    )
    for rel in files:  # copyFiles sources must exist
        (ws_root / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws_root / rel).write_text("")
    ws = Workspace(ws_root)
    return build_plan(load_runtime_config(ws, ws.runtime("3.12.10")), platform)


def decision(plan, name):
    pkg = plan.package(name)
    assert pkg is not None, name
    return pkg.action, pkg.fallback, pkg.reason


def test_plain_dependency_is_a_wheel_with_skip_fallback(make_workspace):
    plan = plan_for(make_workspace, {"dependencies": ["numpy==2.2.6"]})
    assert decision(plan, "numpy") == ("wheel", "skip", None)


def test_skip_rule_applies_only_to_its_platform(make_workspace):
    pkgs = {"dependencies": ["cudf-cu12==25.2"], "skip": {"cudf-cu12": {"macosx-x64": "no CUDA on macOS"}}}
    assert decision(plan_for(make_workspace, pkgs, "macosx-x64"), "cudf-cu12") == ("skip", None, "no CUDA on macOS")
    assert decision(plan_for(make_workspace, pkgs, "linux-x64"), "cudf-cu12")[0] == "wheel"


def test_force_source_rule(make_workspace):
    pkgs = {"dependencies": ["parasail"], "forceSource": {"parasail": {"linux-aarch64": "no ARM wheels"}}}
    assert decision(plan_for(make_workspace, pkgs, "linux-aarch64"), "parasail") == ("source", None, "no ARM wheels")
    assert decision(plan_for(make_workspace, pkgs, "linux-x64"), "parasail")[0] == "wheel"


def test_platform_specific_package_shape_skip_and_force_source(make_workspace):
    pkgs = {
        "dependencies": ["tensorflow"],
        "platformSpecific": {
            "tensorflow": {
                "linux-aarch64": {"action": "skip", "reason": "no wheel"},
                "macosx-aarch64": {"action": "forceSource", "reason": "build it"},
            }
        },
    }
    assert decision(plan_for(make_workspace, pkgs, "linux-aarch64"), "tensorflow") == ("skip", None, "no wheel")
    assert decision(plan_for(make_workspace, pkgs, "macosx-aarch64"), "tensorflow") == ("source", None, "build it")
    assert decision(plan_for(make_workspace, pkgs, "windows-x64"), "tensorflow")[0] == "wheel"


def test_platform_block_shape_adds_dependencies_files_and_policy_for_that_platform_only(make_workspace):
    pkgs = {
        "dependencies": ["numpy"],
        "platformSpecific": {
            "linux-x64": {
                "dependencies": ["uvloop==0.21.0"],
                "copyFiles": [{"from": "assets/x.py", "to": "{site-packages}/x.py"}],
                "resolution": {"allowSourceList": ["numpy"]},
            }
        },
    }
    linux = plan_for(make_workspace, pkgs, "linux-x64", files=["assets/x.py"])
    windows = plan_for(make_workspace, pkgs, "windows-x64", files=["assets/x.py"])
    assert [p.name for p in linux.packages] == ["numpy", "uvloop"]
    assert [p.name for p in windows.packages] == ["numpy"]
    assert [c.to for c in linux.copy_files] == ["{site-packages}/x.py"] and windows.copy_files == []
    assert decision(linux, "numpy")[1] == "source" and decision(windows, "numpy")[1] == "skip"


def test_platform_block_requirement_replaces_general_one(make_workspace):
    pkgs = {"dependencies": ["numpy==2.2.6"], "platformSpecific": {"linux-x64": {"dependencies": ["numpy==2.3.0"]}}}
    assert plan_for(make_workspace, pkgs).package("numpy").requirement == "numpy==2.3.0"


def test_build_wheel_rule_carries_its_spec(make_workspace):
    pkgs = {
        "dependencies": ["freesasa==2.2.1"],
        "buildWheel": {
            "freesasa": {
                "linux-x64": {
                    "reason": "old sdist",
                    "buildRequires": ["setuptools<70"],
                    "configSettings": ["--build-option=--x"],
                }
            }
        },
    }
    plan = plan_for(make_workspace, pkgs)
    pkg = plan.package("freesasa")
    assert (pkg.action, pkg.reason) == ("build-wheel", "old sdist")
    assert pkg.build_wheel.build_requires == ["setuptools<70"]
    assert plan.as_json()["packages"][0]["buildWheel"]["configSettings"] == ["--build-option=--x"]


def test_force_no_binary_list_is_source_everywhere(make_workspace):
    pkgs = {"dependencies": ["pyyaml"], "resolution": {"forceNoBinaryList": ["PyYAML"]}}
    for key in ("linux-x64", "windows-x64"):
        assert decision(plan_for(make_workspace, pkgs, key), "pyyaml")[0] == "source"


def test_precedence_skip_over_list_rules(make_workspace):
    pkgs = {
        "dependencies": ["pyyaml"],
        "skip": {"pyyaml": {"linux-x64": "not here"}},
        "resolution": {"forceNoBinaryList": ["pyyaml"]},
    }
    assert decision(plan_for(make_workspace, pkgs), "pyyaml") == ("skip", None, "not here")


@pytest.mark.parametrize(
    ("resolution", "name", "fallback"),
    [
        ({}, "numpy", "skip"),
        ({"strictMissing": True}, "numpy", "error"),
        ({"allowSourceAll": True}, "numpy", "source"),
        ({"allowSourceAll": True, "strictMissing": True}, "numpy", "source"),
        ({"allowSourceList": ["NumPy"]}, "numpy", "source"),
        ({"allowSourceList": ["other"]}, "numpy", "skip"),
        ({"allowSourceAll": True, "onlyBinaryList": ["numpy"]}, "numpy", "skip"),
        ({"allowSourceList": ["numpy"], "onlyBinaryList": ["numpy"], "strictMissing": True}, "numpy", "error"),
    ],
)
def test_fallback_follows_resolution_policy(make_workspace, resolution, name, fallback):
    plan = plan_for(make_workspace, {"dependencies": ["numpy"], "resolution": resolution})
    assert decision(plan, name)[:2] == ("wheel", fallback)


def test_platform_block_policy_flags_override_package_policy(make_workspace):
    pkgs = {
        "dependencies": ["numpy"],
        "resolution": {"strictMissing": True},
        "platformSpecific": {"windows-x64": {"resolution": {"strictMissing": False}}},
    }
    assert decision(plan_for(make_workspace, pkgs, "windows-x64"), "numpy")[1] == "skip"
    assert decision(plan_for(make_workspace, pkgs, "linux-x64"), "numpy")[1] == "error"


def test_overrides_replace_specifier_with_version_or_specifier(make_workspace):
    plan = plan_for(
        make_workspace,
        {
            "dependencies": ["NumPy==2.2.6", "pandas>=2; python_version >= '3.10'", "scipy"],
            "overrides": {"numpy": "2.3.0", "Pandas": ">=2,<3", "attrs": "25.1.0"},
        },
    )
    assert plan.package("numpy").requirement == "NumPy==2.3.0"
    assert plan.package("pandas").requirement == 'pandas<3,>=2; python_version >= "3.10"'
    assert plan.package("scipy").requirement == "scipy"
    assert plan.overrides == ["attrs==25.1.0"]


def test_names_normalise_across_rules(make_workspace):
    pkgs = {"dependencies": ["Scikit_Learn==1.6.1"], "skip": {"scikit.learn": {"linux-x64": "r"}}}
    plan = plan_for(make_workspace, pkgs)
    assert decision(plan, "scikit-learn") == ("skip", None, "r")
    assert plan.as_json()["packages"][0]["name"] == "scikit-learn"


def test_actions_act_on_direct_dependencies_only_lists_and_exclusions_everywhere(make_workspace):
    pkgs = {
        "dependencies": ["numpy", "torch"],
        "skip": {"cudf-cu12": {"linux-x64": "no"}, "torch": {"linux-x64": "too big"}},
        "exclude": {"tensorflow": {"linux-x64": "never"}},
        "forceSource": {"parasail": {"linux-x64": "src"}},
        "buildWheel": {"freesasa": {"linux-x64": {"reason": "patched"}}},
        "resolution": {"onlyBinaryList": ["scipy"], "forceNoBinaryList": ["pyyaml"]},
    }
    plan = plan_for(make_workspace, pkgs)
    assert decision(plan, "torch") == ("skip", None, "too big")
    assert plan.skip_rules == {"cudf-cu12": "no", "torch": "too big"}  # a kept package may still need them
    assert plan.excluded == {"tensorflow": "never"}
    assert plan.no_binary == ["freesasa", "pyyaml"]  # forceSource of a non-dependency does nothing
    assert plan.build_spec("freesasa").reason == "patched"
    assert plan.only_binary == ["scipy"]


def test_exclude_of_a_direct_dependency_skips_it_and_conflicts_with_force_source(make_workspace):
    plan = plan_for(make_workspace, {"dependencies": ["x"], "exclude": {"x": {"linux-x64": "never"}}})
    assert decision(plan, "x") == ("skip", None, "never") and plan.excluded == {"x": "never"}
    with pytest.raises(ConfigError, match="packages.exclude.x.linux-x64 and packages.forceSource.x.linux-x64"):
        plan_for(
            make_workspace,
            {"dependencies": ["x"], "exclude": {"x": {"linux-x64": "a"}}, "forceSource": {"x": {"linux-x64": "b"}}},
        )


def test_no_deps_marked(make_workspace):
    plan = plan_for(make_workspace, {"dependencies": ["somepkg", "other"], "noDeps": ["SomePkg"]})
    assert plan.package("somepkg").no_deps and not plan.package("other").no_deps


@pytest.mark.parametrize(
    "packages",
    [
        {"skip": {"x": {"linux-x64": "a"}}, "forceSource": {"x": {"linux-x64": "b"}}},
        {"skip": {"x": {"linux-x64": "a"}}, "platformSpecific": {"x": {"linux-x64": {"action": "forceSource"}}}},
        {"forceSource": {"x": {"linux-x64": "a"}}, "buildWheel": {"x": {"linux-x64": {}}}},
        {"platformSpecific": {"x": {"linux-x64": {"action": "skip"}}}, "buildWheel": {"x": {"linux-x64": {}}}},
        {"forceSource": {"x": {"linux-x64": "a"}}, "resolution": {"onlyBinaryList": ["x"]}},
        {"resolution": {"onlyBinaryList": ["x"], "forceNoBinaryList": ["X"]}},
    ],
)
def test_two_actions_for_one_pair_is_a_config_error(make_workspace, packages):
    with pytest.raises(ConfigError, match="x on linux-x64"):
        plan_for(make_workspace, {"dependencies": ["x"], **packages})


def test_same_action_twice_is_fine(make_workspace):
    pkgs = {
        "dependencies": ["x"],
        "skip": {"x": {"linux-x64": "a"}},
        "platformSpecific": {"x": {"linux-x64": {"action": "skip", "reason": "b"}}},
    }
    assert decision(plan_for(make_workspace, pkgs), "x")[0] == "skip"


def test_conflict_for_another_platform_does_not_matter_here_but_is_caught_there(make_workspace):
    pkgs = {"dependencies": ["x"], "skip": {"x": {"windows-x64": "a"}}, "forceSource": {"x": {"windows-x64": "b"}}}
    assert decision(plan_for(make_workspace, pkgs), "x")[0] == "wheel"
    with pytest.raises(ConfigError):
        plan_for(make_workspace, pkgs, "windows-x64")


def test_duplicate_requirement_in_one_list_is_an_error(make_workspace):
    with pytest.raises(ConfigError, match="lists numpy twice"):
        plan_for(make_workspace, {"dependencies": ["numpy==1", "NumPy==2"]})


def test_unknown_platform_is_usage_error(make_workspace):
    with pytest.raises(UsageError, match="unknown platform"):
        plan_for(make_workspace, {}, "solaris-sparc")


def test_registries_in_order(make_workspace):
    plan = plan_for(
        make_workspace,
        {},
        registries={"default": ["https://a.example/simple"], "additional": ["https://b.example/simple"]},
    )
    assert plan.registries == ["https://a.example/simple", "https://b.example/simple"]
    assert plan.uses_machine_index is False
