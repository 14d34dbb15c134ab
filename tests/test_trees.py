"""The installed-tree cache: wheels installed and compiled once, shared across runtimes and platforms, packed
straight from the entries into the same bytes as a from-scratch build, and never a damaged entry used."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tarfile
import time
from pathlib import Path

from runenv.build.packages.bytecode import ByteCompiler, Compiler, pyc_path
from runenv.build.packages.layers import TREE_TOP, retarget_pyc
from runenv.build.packages.trees import ENTRY, find_tree
from runenv.cache import Cache
from runenv.platforms import RuntimeLayout, get_platform
from tests.conftest import start_runenv
from tests.helpers import HOST
from tests.helpers.built import tar_names
from tests.helpers.pbs import MINOR, VERSION

STEM = f"python-{VERSION}-{HOST}"
SITE = f"lib/python{MINOR}/site-packages"
PACKAGES = {"packages": {"dependencies": ["tool-a", "datascripts"]}}


def _trees(sandbox: Path) -> dict[str, float]:
    """Every entry of the tree cache and when it was made."""
    root = sandbox / "runenv-cache" / "trees"
    return {p.name: (p / ENTRY).stat().st_mtime_ns for p in root.iterdir()} if root.is_dir() else {}


def _build(run_cli, ws: Path, *args: str) -> list[dict]:
    result = run_cli("-w", ws, "-o", "json", "build", *args)
    assert result.code == 0, result.stderr
    return result.json()


def test_a_pyc_retargeted_to_another_top_directory_is_the_pyc_compiled_there(tmp_path: Path) -> None:
    platform = get_platform(HOST)
    compiler = Compiler(Path(sys.executable), ".".join(map(str, sys.version_info[:3])))
    source = Path(__file__).read_text(encoding="utf-8")  # a real module with nested functions and constants
    pycs = {}
    for top in (TREE_TOP, f"python-{VERSION}-slim-{HOST}-with-a-longer-name"):
        prefix = tmp_path / top
        module = prefix / platform.site_packages(compiler.version) / "pkg" / "mod.py"
        module.parent.mkdir(parents=True)
        module.write_text(source, encoding="utf-8")
        with ByteCompiler(RuntimeLayout(prefix, platform, compiler.version), compiler=compiler) as bytecode:
            assert bytecode.finish()
        pycs[top] = pyc_path(module, compiler.version).read_bytes()
    (tree, tree_pyc), (other, other_pyc) = pycs.items()
    rel = f"{platform.site_packages(compiler.version)}/pkg/mod.py"
    assert tree_pyc != other_pyc
    assert retarget_pyc(tree_pyc, f"{tree}/{rel}", f"{other}/{rel}") == other_pyc
    assert retarget_pyc(other_pyc, f"{other}/{rel}", f"{tree}/{rel}") == tree_pyc
    assert retarget_pyc(tree_pyc, f"{tree}/elsewhere.py", f"{other}/{rel}") is None  # not its source: refused


def test_cold_warm_and_wiped_cache_builds_are_the_same_bytes(index, build_workspace, run_cli, sandbox) -> None:
    ws = build_workspace(runtimes={VERSION: PACKAGES})
    [cold] = _build(run_cli, ws, VERSION)
    made = _trees(sandbox)
    assert len(made) == 3  # tool-a, helper-lib, datascripts
    [warm] = _build(run_cli, ws, VERSION, "--rebuild")
    assert _trees(sandbox) == made  # every tree taken from the cache, none made again
    shutil.rmtree(sandbox / "runenv-cache" / "trees")
    [wiped] = _build(run_cli, ws, VERSION, "--rebuild")
    assert cold["sha256"] == warm["sha256"] == wiped["sha256"]
    names = tar_names(ws / "dist" / f"{STEM}.tar.gz")
    assert f"{STEM}/{SITE}/tool_a/__pycache__/__init__.cpython-{MINOR.replace('.', '')}.pyc" in names
    assert not [n for n in names if TREE_TOP in n]


def test_runtimes_and_platforms_sharing_a_wheel_share_its_tree(index, build_workspace, run_cli, sandbox) -> None:
    ws = build_workspace(runtimes={VERSION: PACKAGES, f"{VERSION}-slim": {"packages": {"dependencies": ["tool-a"]}}})
    _build(run_cli, ws, VERSION)
    made = _trees(sandbox)
    [slim] = _build(run_cli, ws, f"{VERSION}-slim")
    assert _trees(sandbox) == made  # tool-a and helper-lib: installed and compiled once for both runtimes
    _build(run_cli, ws, VERSION, "--platform", "macosx-aarch64", "--no-verify")
    assert _trees(sandbox) == made  # same layout and Python: the pure wheels' trees serve macOS too
    shutil.rmtree(sandbox / "runenv-cache" / "trees")
    [alone] = _build(run_cli, ws, f"{VERSION}-slim", "--rebuild")
    assert alone["sha256"] == slim["sha256"]  # a tree made for another runtime packs as if made for this one


def test_a_damaged_tree_entry_is_made_again(index, build_workspace, run_cli, sandbox) -> None:
    ws = build_workspace(runtimes={VERSION: PACKAGES})
    [built] = _build(run_cli, ws, VERSION)
    trees = sandbox / "runenv-cache" / "trees"
    [tool_a] = [p for p in trees.iterdir() if (p / TREE_TOP / SITE / "tool_a").is_dir()]
    module = tool_a / TREE_TOP / SITE / "tool_a" / "__init__.py"
    module.write_bytes(module.read_bytes()[:5])  # truncated
    [again] = _build(run_cli, ws, VERSION, "--rebuild")
    assert again["sha256"] == built["sha256"]
    assert find_tree(Cache(sandbox / "runenv-cache"), tool_a.name) is not None  # made again, whole
    (tool_a / ENTRY).unlink()  # as if a build died before the entry was complete
    other = next(p for p in trees.iterdir() if p != tool_a)
    (other / TREE_TOP / SITE / "stray.py").write_text("x = 1\n")  # a file the entry does not list
    [third] = _build(run_cli, ws, VERSION, "--rebuild")
    assert third["sha256"] == built["sha256"]
    assert not (other / TREE_TOP / SITE / "stray.py").exists()
    assert f"{STEM}/{SITE}/stray.py" not in tar_names(ws / "dist" / f"{STEM}.tar.gz")


def test_a_build_killed_while_making_a_tree_leaves_nothing_trusted(index, build_workspace, run_cli, sandbox) -> None:
    ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": ["setuptools"]}}})
    cache = sandbox / "runenv-cache"
    proc = start_runenv("-w", ws, "build", VERSION, "--no-verify")
    deadline = time.monotonic() + 120
    caught = False
    while proc.poll() is None and time.monotonic() < deadline:
        if any((d / "entry" / TREE_TOP / SITE).is_dir() for d in (cache / "tmp").glob("tree-*")):
            proc.send_signal(signal.SIGKILL)
            caught = True
            break
        time.sleep(0.002)
    proc.wait()
    assert caught, "the build finished before a tree was being made"
    leftover = [p for p in (cache / "trees").iterdir()] if (cache / "trees").is_dir() else []
    assert all(find_tree(Cache(cache), p.name) is not None for p in leftover)  # only whole entries
    [built] = _build(run_cli, ws, VERSION, "--no-verify")
    assert not list((cache / "tmp").glob("tree-*"))  # the killed build's staging was swept
    shutil.rmtree(cache / "trees")
    [fresh] = _build(run_cli, ws, VERSION, "--no-verify", "--rebuild")
    assert fresh["sha256"] == built["sha256"]
    meta = json.loads(next((cache / "trees").iterdir()).joinpath(ENTRY).read_text())
    assert meta["pycSources"]  # setuptools was compiled into its tree


def test_each_tree_is_packed_once_and_a_damaged_packed_run_is_packed_again(
    index, build_workspace, run_cli, sandbox
) -> None:
    """A tree's run of the tarball (its own gzip member) is kept and copied into later tarballs of the same
    top directory; a kept run that does not hash to its record is never copied."""
    ws = build_workspace(runtimes={VERSION: PACKAGES})
    [cold] = _build(run_cli, ws, VERSION)
    packed = sandbox / "runenv-cache" / "packed"
    runs = sorted(p for p in packed.iterdir() if not p.name.endswith(".json"))
    assert len(runs) == 3  # one per tree: tool-a, helper-lib, datascripts
    damaged = runs[0]
    good = damaged.read_bytes()
    damaged.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    [again] = _build(run_cli, ws, VERSION, "--rebuild")
    assert again["sha256"] == cold["sha256"]
    assert damaged.read_bytes() == good  # packed again, in place of the damaged one
    shutil.rmtree(packed)
    [fresh] = _build(run_cli, ws, VERSION, "--rebuild")
    assert fresh["sha256"] == cold["sha256"]
    with tarfile.open(ws / "dist" / f"{STEM}.tar.gz") as tar:  # one gzip stream of several members
        assert f"{STEM}/{SITE}/tool_a/__init__.py" in tar.getnames()


def test_the_default_cache_dir_holds_every_entry_a_build_makes(
    index, build_workspace, run_cli, sandbox, monkeypatch
) -> None:
    """Without RUNENV_CACHE_DIR (as users run it), trees, packed runs, parsed native files, import results and
    the artifact land in the platform's user cache directory, and a rebuild from there is the same bytes."""
    monkeypatch.delenv("RUNENV_CACHE_DIR")
    default = Path(os.environ["XDG_CACHE_HOME"]) / "runenv"  # platformdirs' user cache dir on Linux
    ws = build_workspace(runtimes={VERSION: PACKAGES})
    [cold] = _build(run_cli, ws, VERSION)
    for entry in ("trees", "packed", "verified", "verified-imports", "artifacts", "sha256"):
        assert any((default / entry).iterdir()), entry
    assert not (sandbox / "runenv-cache").exists()
    [again] = _build(run_cli, ws, VERSION, "--rebuild")
    assert again["sha256"] == cold["sha256"]
    ran = run_cli("-w", ws, "run", VERSION, "--", "python", "-c", "import tool_a")
    assert ran.code == 0, ran.stderr
    assert any((default / "runtimes").iterdir())
