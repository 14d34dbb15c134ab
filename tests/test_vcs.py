"""Git dependencies (runenv/build/packages/vcs.py): the requirement forms, the plan, the PEP 751 vcs entry, and builds
end to end against real repositories served over smart HTTP on loopback (`git http-backend`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runenv.build.packages.lock import read_lock
from runenv.build.packages.vcs import git_failure, parse_vcs, strip_credentials
from runenv.compat import tomllib
from runenv.config.load import load_runtime_config
from runenv.errors import ConfigError
from runenv.plan import build_plan
from runenv.workspace import find_workspace
from tests.conftest import REPO
from tests.helpers import HOST
from tests.helpers.built import read_manifest, tar_names, unpack
from tests.helpers.git import GitProject, GitServer, make_project
from tests.helpers.index import TestIndex
from tests.helpers.pbs import MINOR, VERSION

STEM = f"python-{VERSION}-{HOST}"
WIN_STEM = f"python-{VERSION}-windows-x64"
SITE = f"lib/python{MINOR}/site-packages"


# -- requirement forms and the plan (no network) ---------------------------------------------------


def loaded_of(ws: Path):  # noqa: ANN201
    workspace = find_workspace(explicit=ws)
    return load_runtime_config(workspace, workspace.runtime(VERSION))


def test_bare_and_named_forms_are_parsed() -> None:
    bare = parse_vcs("git+https://github.com/org/scCODA.git@e0548be")
    assert bare is not None
    assert (bare.url, bare.rev, bare.name, bare.plan_name) == (
        "https://github.com/org/scCODA.git",
        "e0548be",
        None,
        "sccoda",
    )
    named = parse_vcs("My_Pkg[extra] @ git+ssh://git@host.example/org/repo.git@v1.2#subdirectory=python")
    assert named is not None
    assert (named.url, named.rev, named.plan_name, named.subdirectory) == (
        "ssh://git@host.example/org/repo.git",
        "v1.2",
        "my-pkg",
        "python",
    )
    egg = parse_vcs("git+https://host.example/org/repo#egg=other-name")
    assert egg is not None and (egg.rev, egg.plan_name) == (None, "other-name")
    assert parse_vcs("numpy==2.2.6") is None
    assert strip_credentials("https://user:tok@host.example/org/repo.git") == "https://host.example/org/repo.git"


@pytest.mark.parametrize(
    ("dependency", "message"),
    [
        ("hg+https://host.example/repo", "only git repositories are supported, not hg"),
        ("git+https://host.example/org/repo.git@", "empty revision after '@'"),
        ("git+repo", "expected git+https://host/path[@revision]"),
        ("pkg @ git+https://u:s3cret@host.example/org/repo.git@", "empty revision"),
    ],
)
def test_a_malformed_git_dependency_is_a_one_line_config_error(make_workspace, run_cli, dependency, message) -> None:
    ws = make_workspace(runtimes={VERSION: {"packages": {"dependencies": [dependency]}}})
    result = run_cli("-w", ws, "config", "validate")
    assert result.code == 2
    line = next(ln for ln in result.stderr.splitlines() if message in ln)
    assert "config.json" in line and "packages.dependencies[0]" in line
    assert "s3cret" not in result.stderr + result.stdout


def test_plan_names_a_bare_dependency_by_its_repository_and_builds_it_from_source(make_workspace, run_cli) -> None:
    deps = ["git+https://u:s3cret@host.example/org/Demo-Repo.git@e0548be", "named @ git+https://host.example/o/x@v1"]
    ws = make_workspace(runtimes={VERSION: {"packages": {"dependencies": deps}}})
    assert run_cli("-w", ws, "config", "validate").code == 0
    result = run_cli("-w", ws, "-o", "json", "config", "show", VERSION, "--platform", HOST)
    assert result.code == 0, result.stderr
    packages = {p["name"]: p for p in result.json()["packages"]}
    assert packages["demo-repo"]["action"] == "source"
    assert packages["demo-repo"]["vcs"] == {"url": "https://host.example/org/Demo-Repo.git", "revision": "e0548be"}
    assert packages["named"]["vcs"] == {"url": "https://host.example/o/x", "revision": "v1"}
    text = run_cli("-w", ws, "config", "show", VERSION, "--platform", HOST)
    assert "git+https://***@host.example/org/Demo-Repo.git@e0548be" in text.stdout
    assert "s3cret" not in result.stdout + text.stdout


def test_rules_apply_to_a_bare_dependency_under_its_repository_or_metadata_name(make_workspace) -> None:
    dep = "git+https://host.example/org/demo-repo.git@e0548be"
    skip = {"demo-repo": {"windows-x64": "not on windows"}, "vcs-demo": {"macosx-x64": "not on intel macs"}}
    ws = make_workspace(runtimes={VERSION: {"packages": {"dependencies": [dep], "skip": skip}}})
    loaded = loaded_of(ws)
    assert build_plan(loaded, "windows-x64").packages[0].action == "skip"
    assert build_plan(loaded, "macosx-x64").packages[0].action == "source"  # metadata name not known yet
    learned = build_plan(loaded, "macosx-x64", vcs_names={dep: "vcs-demo"}).packages[0]
    assert (learned.name, learned.action, learned.reason) == ("vcs-demo", "skip", "not on intel macs")


def test_an_override_of_a_git_dependency_is_refused(make_workspace) -> None:
    ws = make_workspace(
        runtimes={
            VERSION: {"packages": {"dependencies": ["demo @ git+https://h.example/demo"], "overrides": {"demo": "2"}}}
        }
    )
    with pytest.raises(ConfigError, match="overrides.demo names the git dependency"):
        build_plan(loaded_of(ws), HOST)


def test_uv_git_errors_become_one_line_naming_the_dependency() -> None:
    # Real uv 0.13 messages (stderr of `uv pip compile`).
    short = (
        "error: Git operation failed\n  cause: failed to find branch, tag, or commit `deadbee`\n"
        "  cause: process didn't exit successfully: `/usr/bin/git rev-parse 'deadbee^0'` (exit status: 128)\n"
    )
    tag = (
        "error: Git operation failed\n  cause: failed to fetch into: uvcache/git-v2/db/3f49f624dfb3c05e\n"
        "  cause: failed to fetch branch or tag `nope123`\n  cause: process didn't exit successfully: "
        "`/usr/bin/git fetch --force --update-head-ok 'https://host.example/org/a.git' "
        "'+refs/tags/nope123:refs/remotes/origin/tags/nope123'` (exit status: 128)\n"
        "         --- stderr\n         fatal: couldn't find remote ref refs/tags/nope123\n"
    )
    gone = (
        "error: Git operation failed\n  cause: failed to clone into: uvcache/git-v2/db/b3ac215231d99948\n"
        "  cause: process didn't exit successfully: `/usr/bin/git fetch --force --update-head-ok "
        "'https://host.example/org/b.git' '+HEAD:refs/remotes/origin/HEAD'` (exit status: 128)\n"
        "         --- stderr\n         fatal: repository 'https://host.example/org/b.git/' not found\n"
    )
    reqs = ["git+https://host.example/org/a.git@deadbee", "b @ git+https://u:tok@host.example/org/b.git", "numpy"]
    assert git_failure(short, reqs) == (
        "git dependency 'git+https://host.example/org/a.git@deadbee': revision 'deadbee' not found in "
        "https://host.example/org/a.git"
    )
    assert git_failure(tag, [*reqs, "git+https://host.example/org/a.git@nope123"]).startswith(
        "git dependency 'git+https://host.example/org/a.git@nope123': revision 'nope123' not found"
    )
    gone_line = git_failure(gone, reqs)
    assert gone_line.startswith("git dependency 'b @ git+https://***@host.example/org/b.git': cannot fetch")
    assert "not found" in gone_line and "tok" not in gone_line
    assert git_failure("error: No solution found", reqs) is None


# -- end to end: a real repository over HTTP, the loopback index and PBS mirror ---------------------


@pytest.fixture
def setuptools_index(index: TestIndex) -> TestIndex:
    """The loopback index, which must hold setuptools (the projects' build backend)."""
    index.require("setuptools")
    return index


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    root = tmp_path / "repos"
    root.mkdir()
    return root


@pytest.fixture
def git_server(repos: Path) -> Iterator[GitServer]:
    with GitServer(repos) as server:
        yield server


def url_of(server: GitServer, project: GitProject, credentials: str = "") -> str:
    return f"{server.url.replace('://', '://' + credentials)}/{project.bare.name}"


def packages_of(manifest: dict) -> dict[str, dict]:
    return {p["name"]: p for p in manifest["packages"]}


def lock_of(ws: Path, platform: str = HOST) -> dict:
    return tomllib.loads((ws / f"python-{VERSION}" / f"pylock.{platform}.toml").read_text())


def test_bare_dependency_locks_the_commit_and_builds_into_the_runtime(
    setuptools_index, repos, git_server, build_workspace, run_cli, tmp_path
) -> None:
    project = make_project(repos, "vcs-demo", "1.0", "vcs_demo", repo="demo-repo")
    dep = f"git+{url_of(git_server, project)}@{project.short}"  # as the seed writes it: no name, a short commit
    ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": [dep]}}})

    locked = run_cli("-w", ws, "lock", VERSION)
    assert locked.code == 0, locked.stderr
    entry = next(p for p in lock_of(ws)["packages"] if p["name"] == "vcs-demo")
    assert entry["version"] == "1.0"
    assert entry["vcs"] == {
        "type": "git",
        "url": url_of(git_server, project),
        "requested-revision": project.short,
        "commit-id": project.commit,
    }
    assert "wheels" not in entry and "sdist" not in entry
    assert lock_of(ws)["tool"]["runenv"]["vcs-names"] == {dep: "vcs-demo"}
    pin = read_lock(ws / f"python-{VERSION}" / f"pylock.{HOST}.toml").package("vcs-demo")
    assert pin is not None and pin.kind == "vcs" and pin.vcs is not None and pin.vcs.commit == project.commit

    built = run_cli("-w", ws, "-o", "json", "build", VERSION)
    assert built.code == 0, built.stderr
    report = built.json()[0]["verify"]
    assert report["ok"] and report["imports"]["modules"] >= 1  # vcs_demo imported by the build's own verification
    record = packages_of(read_manifest(ws, STEM))["vcs-demo"]
    assert record["how"] == "built-from-vcs" and record["requested"] is True
    assert (record["url"], record["commit"], record["version"]) == (url_of(git_server, project), project.commit, "1.0")
    prefix = unpack(ws, STEM, tmp_path / "moved")
    run = subprocess.run(
        [str(prefix / "bin" / "python3"), "-c", "import vcs_demo; print(vcs_demo.VALUE)"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "from git"


def test_second_build_uses_the_cached_checkout_offline(
    setuptools_index, repos, git_server, build_workspace, run_cli, sandbox
) -> None:
    project = make_project(repos, "vcs-demo", "1.0", "vcs_demo")
    dep = f"vcs-demo @ git+{url_of(git_server, project)}@{project.tag}"  # the PEP 508 form, a tag
    ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": [dep]}}})
    assert run_cli("-w", ws, "build", VERSION, "--no-verify").code == 0
    assert lock_of(ws)["packages"][0]["vcs"]["commit-id"] == project.commit
    shutil.rmtree(project.bare)  # the repository is gone
    requests = len(git_server.requests)

    # --rebuild: not the finished artifact from the cache, but the wheel built from that commit
    again = run_cli("-w", ws, "build", VERSION, "--offline", "--no-verify", "--rebuild")
    assert again.code == 0, again.stderr
    assert not list((sandbox / "runenv-cache" / "vcs").glob("*/*/*.egg-info"))  # builds never write into the cache
    shutil.rmtree(sandbox / "runenv-cache" / "vcs-wheels")
    rebuilt = run_cli("-w", ws, "build", VERSION, "--offline", "--rebuild")  # built again from the checkout
    assert rebuilt.code == 0, rebuilt.stderr
    assert len(git_server.requests) == requests
    assert packages_of(read_manifest(ws, STEM))["vcs-demo"]["commit"] == project.commit

    shutil.rmtree(sandbox / "runenv-cache" / "vcs-wheels")
    shutil.rmtree(sandbox / "runenv-cache" / "vcs")
    missing = run_cli("-w", ws, "build", VERSION, "--offline", "--no-verify", "--rebuild")
    assert missing.code == 1
    errors = [ln for ln in missing.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [
        f"error: offline, and the checkout of {url_of(git_server, project)}@{project.commit[:12]} is not cached"
    ]


def _left_by_a_killed_run(parent: Path, prefix: str) -> Path:
    """A staging directory as a runenv process killed mid-fetch leaves it: owner-marked, its lock free."""
    code = (
        "import sys; from pathlib import Path; from runenv import owner; "
        "print(owner.make_owned_dir(Path(sys.argv[1]), sys.argv[2])[0])"
    )
    parent.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", code, str(parent), prefix], capture_output=True, text=True, check=True, cwd=REPO
    )
    left = Path(out.stdout.strip())
    assert left.is_dir() and left.parent == parent
    return left


def test_staging_dirs_of_a_killed_fetch_are_swept_by_the_next_one(
    setuptools_index, repos, git_server, build_workspace, run_cli, sandbox
) -> None:
    cache = sandbox / "runenv-cache"
    checkout = _left_by_a_killed_run(cache / "tmp", "vcs-")
    wheel = _left_by_a_killed_run(cache / "vcs-wheels", ".part-")
    project = make_project(repos, "vcs-demo", "1.0", "vcs_demo")
    dep = f"vcs-demo @ git+{url_of(git_server, project)}@{project.tag}"
    ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": [dep]}}})
    built = run_cli("-w", ws, "build", VERSION, "--no-verify")
    assert built.code == 0, built.stderr
    assert not checkout.exists() and not wheel.exists()
    assert not list((cache / "tmp").glob("vcs-*")) and not list((cache / "vcs-wheels").glob(".part-*"))
    assert [p.name for p in (cache / "vcs").glob("*/*")] == [project.commit]  # the checkout, without an owner file
    assert not list((cache / "vcs").glob("*/*/.runenv-owner"))


def test_a_branch_and_credentials_never_reach_a_file(
    setuptools_index, repos, git_server, build_workspace, run_cli
) -> None:
    project = make_project(repos, "vcs-demo", "1.0", "vcs_demo")
    dep = f"git+{url_of(git_server, project, 'deploy:s3cret@')}@{project.branch}"
    ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": [dep]}}})
    result = run_cli("-w", ws, "build", VERSION, "--no-verify")
    assert result.code == 0, result.stderr
    assert lock_of(ws)["packages"][0]["vcs"]["commit-id"] == project.commit
    written = [p for p in ws.rglob("*") if p.is_file() and p.name != "config.json"]
    assert written and not [p for p in written if b"s3cret" in p.read_bytes()]
    assert "s3cret" not in result.stdout + result.stderr


def test_an_unknown_revision_is_one_line_naming_the_dependency(
    setuptools_index, repos, git_server, build_workspace, run_cli
) -> None:
    project = make_project(repos, "vcs-demo", "1.0", "vcs_demo")
    for dep in (
        f"git+{url_of(git_server, project)}@nosuchtag",
        f"vcs-demo @ git+{url_of(git_server, project)}@nosuchtag",
    ):
        ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": [dep]}}})
        result = run_cli("-w", ws, "lock", VERSION)
        assert result.code == 1
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert errors == [
            f"error: git dependency {dep!r}: revision 'nosuchtag' not found in {url_of(git_server, project)} "
            f"(resolving for {HOST})"
        ], result.stderr
        assert not (ws / f"python-{VERSION}" / f"pylock.{HOST}.toml").exists()


def test_metadata_that_needs_a_build_names_a_bare_dependency(
    setuptools_index, repos, git_server, build_workspace, run_cli
) -> None:
    project = make_project(repos, "dyn-demo", "0.3", "dyn_demo", repo="dyn", static=False)
    dep = f"git+{project.file_url()}@{project.short}"  # git+file:// works too
    ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": [dep]}}})
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    assert packages_of(read_manifest(ws, STEM))["dyn-demo"]["version"] == "0.3"
    assert f"{STEM}/{SITE}/dyn_demo/__init__.py" in tar_names(ws / "dist" / f"{STEM}.tar.gz")


def test_cross_build_takes_a_pure_git_package_and_refuses_a_platform_one(
    setuptools_index, repos, git_server, build_workspace, run_cli
) -> None:
    pure = make_project(repos, "vcs-demo", "1.0", "vcs_demo")
    native = make_project(repos, "native-demo", "2.0", "native_demo", platform_wheel=True)
    ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": [f"git+{url_of(git_server, pure)}"]}}})
    result = run_cli("-w", ws, "build", VERSION, "--platform", "windows-x64")
    assert result.code == 0, result.stderr
    assert f"{WIN_STEM}/Lib/site-packages/vcs_demo/__init__.py" in tar_names(ws / "dist" / f"{WIN_STEM}.tar.gz")
    assert packages_of(read_manifest(ws, WIN_STEM))["vcs-demo"]["how"] == "built-from-vcs"

    dep = f"git+{url_of(git_server, native)}@{native.tag}"
    ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": [dep]}}}, root=ws.parent / "ws-native")
    failed = run_cli("-w", ws, "build", VERSION, "--platform", "windows-x64")
    assert failed.code == 1
    line = next(ln for ln in failed.stderr.splitlines() if ln.startswith("error:"))
    assert "native-demo 2.0" in line and "platform-specific wheel" in line and "windows-x64" in line
    assert not (ws / "dist" / f"{WIN_STEM}.tar.gz").exists()
