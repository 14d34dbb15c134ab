"""The closure check: pure over (distributions, roots, markers), and through `runenv build` on host and windows-x64."""

from __future__ import annotations

import pytest

from runenv.build.packages.closure import Distribution, missing_requirements
from runenv.platforms import get_platform
from tests.helpers.built import dist_files, leftovers, read_manifest
from tests.helpers.pbs import RELEASE, VERSION

LINUX = get_platform("linux-x64").marker_environment("3.12.10")
WINDOWS = get_platform("windows-x64").marker_environment("3.12.10")


def _missing(dists: list[Distribution], env: dict[str, str], roots: tuple[str, ...] = (), **kw) -> list[str]:
    return [v.describe() for v in missing_requirements(dists, roots or [d.name for d in dists], env, **kw)]


def test_requirements_present_in_a_fitting_version_pass():
    dists = [Distribution("sccoda", "1.0", ("tensorflow>=2", "rpy2 (>=3.5)")), *_plain("tensorflow", "rpy2")]
    assert _missing(dists, LINUX) == []


def _plain(*names: str) -> list[Distribution]:
    return [Distribution(n, "3.6.0" if n == "rpy2" else "2.1") for n in names]


def test_a_missing_or_too_old_requirement_is_named_with_its_distribution():
    dists = [Distribution("sccoda", "1.0", ("tensorflow>=2", "rpy2>=4")), Distribution("rpy2", "3.6.0")]
    assert _missing(dists, LINUX) == [
        "sccoda 1.0 requires tensorflow>=2, but it is not installed",
        "sccoda 1.0 requires rpy2>=4, but 3.6.0 is installed",
    ]


def test_markers_are_evaluated_for_the_target_platform_and_python():
    dists = [Distribution("tool", "1.0", ('pywin32; sys_platform == "win32"', 'tomli; python_version < "3.11"'))]
    assert _missing(dists, LINUX) == []
    assert _missing(dists, WINDOWS) == ['tool 1.0 requires pywin32; sys_platform == "win32", but it is not installed']
    old = get_platform("linux-x64").marker_environment("3.10.18")
    assert _missing(dists, old) == ['tool 1.0 requires tomli; python_version < "3.11", but it is not installed']


def test_extras_asked_for_switch_on_their_requirements_transitively():
    dists = [
        Distribution("app", "1.0", ("lib[fast]",)),
        Distribution("lib", "1.0", ('speedup; extra == "fast"', 'docs-tool; extra == "docs"')),
    ]
    assert _missing(dists, LINUX, roots=("app",)) == [
        'lib 1.0 requires speedup; extra == "fast", but it is not installed'
    ]
    dists[0] = Distribution("app", "1.0")
    assert _missing(dists, LINUX, roots=("app", "lib[docs]")) == [
        'lib 1.0 requires docs-tool; extra == "docs", but it is not installed'
    ]


def test_no_deps_distributions_are_not_checked():
    dists = [Distribution("nodeps-pkg", "1.0", ("heavy-dep",))]
    assert _missing(dists, LINUX, no_deps=["NoDeps_Pkg"]) == []


@pytest.mark.parametrize("platform", ["linux-x64", "windows-x64"])
def test_build_refuses_a_runtime_whose_exclusion_breaks_a_kept_package(index, build_workspace, run_cli, platform):
    packages = {"dependencies": ["needs-excluded"], "exclude": {"excluded-dep": {platform: "never"}}}
    ws = build_workspace(runtimes={VERSION: {"packages": packages}})
    result = run_cli("-w", ws, "build", VERSION, "--platform", platform)
    assert result.code == 1
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert f"on {platform} is incomplete: needs-excluded 1.0 requires excluded-dep" in line
    assert f"packages.exclude.excluded-dep.{platform}" in result.stderr  # the hint
    assert dist_files(ws) == [] and leftovers(ws) == []


@pytest.mark.parametrize("platform", ["linux-x64", "windows-x64"])
def test_build_records_a_skip_overridden_by_a_kept_package(index, build_workspace, run_cli, platform):
    ws = build_workspace(
        runtimes={VERSION: {"packages": {"dependencies": ["needs-excluded"]}}},
        shared={"python": {"release": RELEASE}, "packages": {"skip": {"excluded-dep": {platform: "not here"}}}},
    )
    result = run_cli("-w", ws, "build", VERSION, "--platform", platform)
    assert result.code == 0, result.stderr
    assert "excluded-dep" in result.stderr and "needs-excluded" in result.stderr  # the warning
    manifest = read_manifest(ws, f"python-{VERSION}-{platform}")
    assert {p["name"] for p in manifest["packages"]} >= {"needs-excluded", "excluded-dep"}
    assert manifest["kept-as-dependency"] == [
        {"name": "excluded-dep", "platform": platform, "reason": "not here", "required-by": ["needs-excluded"]}
    ]
