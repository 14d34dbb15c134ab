"""registries.indexStrategy and index order, against two loopback indexes holding one project in different versions.

First index: `twoidx` 1.0. Second: `twoidx` 2.0+cu126 (a torch-style local version, as on a CUDA index).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runenv.build.packages.lock import lock_is_fresh, lock_runtime
from runenv.build.packages.resolve import index_args
from runenv.config import load_runtime_config
from runenv.errors import StepError
from runenv.plan import build_plan
from runenv.workspace import find_workspace
from tests.helpers import HOST
from tests.helpers.http import StaticServer
from tests.helpers.index import build_wheel, uv_env, write_simple_index


@pytest.fixture(scope="module")
def two_indexes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(first, second) simple-index URLs."""
    roots = [tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second")]
    for root, version in zip(roots, ("1.0", "2.0+cu126"), strict=True):
        (root / "files").mkdir()
        write_simple_index(root, [build_wheel(root / "files", "twoidx", version, {"twoidx.py": ""})])
    with StaticServer(roots[0]) as first, StaticServer(roots[1]) as second:
        yield f"{first.url}/simple", f"{second.url}/simple"


def _lock(ws_root: Path, platform: str = HOST):
    ws = find_workspace(explicit=ws_root)
    loaded = load_runtime_config(ws, ws.runtime("3.11.7"))
    return lock_runtime(loaded, build_plan(loaded, platform)).lock


def _workspace(make_workspace, registries: dict, requirement: str = "twoidx", shared: dict | None = None) -> Path:
    runtime = {"registries": registries, "packages": {"dependencies": [requirement]}}
    return make_workspace(shared=shared, runtimes={"3.11.7": runtime})


@pytest.mark.parametrize("platform", [HOST, "windows-x64"])
def test_best_match_takes_the_highest_version_across_indexes(
    two_indexes, make_workspace, tmp_path, monkeypatch, platform
):
    first, second = two_indexes
    uv_env(monkeypatch, tmp_path)
    lock = _lock(_workspace(make_workspace, {"default": [first], "additional": [second]}), platform)
    pkg = lock.package("twoidx")
    assert (pkg.version, pkg.index) == ("2.0+cu126", second)


def test_first_index_takes_the_first_index_that_has_the_project(two_indexes, make_workspace, tmp_path, monkeypatch):
    first, second = two_indexes
    uv_env(monkeypatch, tmp_path)
    registries = {"default": [first], "additional": [second], "indexStrategy": "first-index"}
    pkg = _lock(_workspace(make_workspace, registries)).package("twoidx")
    assert (pkg.version, pkg.index) == ("1.0", first)
    # Listed the other way round, the other index is first.
    registries = {"default": [second], "additional": [first], "indexStrategy": "first-index"}
    pkg = _lock(_workspace(make_workspace, registries)).package("twoidx")
    assert (pkg.version, pkg.index) == ("2.0+cu126", second)


def test_a_pin_only_the_second_index_has_locks_under_best_match_only(
    two_indexes, make_workspace, tmp_path, monkeypatch
):
    first, second = two_indexes
    uv_env(monkeypatch, tmp_path)
    ws = _workspace(make_workspace, {"default": [first], "additional": [second]}, "twoidx==2.0+cu126")
    assert _lock(ws).package("twoidx").version == "2.0+cu126"
    registries = {"default": [first], "additional": [second], "indexStrategy": "first-index"}
    with pytest.raises(StepError, match="twoidx"):
        _lock(_workspace(make_workspace, registries, "twoidx==2.0+cu126"))


def test_the_machine_index_comes_after_the_additional_registries(two_indexes, make_workspace, tmp_path, monkeypatch):
    first, second = two_indexes
    uv_env(monkeypatch, tmp_path, first)  # the machine's configured index
    registries = {"additional": [second], "indexStrategy": "first-index"}
    pkg = _lock(_workspace(make_workspace, registries)).package("twoidx")
    assert pkg.index == second  # uv searches every --index before the default (the machine's) index


def test_index_strategy_is_an_input_of_the_lock(two_indexes, make_workspace, tmp_path, monkeypatch):
    first, second = two_indexes
    uv_env(monkeypatch, tmp_path)
    ws = _workspace(make_workspace, {"default": [first], "additional": [second]})
    _lock(ws)
    workspace = find_workspace(explicit=ws)
    _workspace(make_workspace, {"default": [first], "additional": [second], "indexStrategy": "first-index"})
    loaded = load_runtime_config(workspace, workspace.runtime("3.11.7"))
    assert not lock_is_fresh(loaded, build_plan(loaded, HOST))


def test_index_args_keep_the_listed_order():
    assert index_args(["https://a.invalid/simple", "https://b.invalid/simple"], False, "first-index") == [
        "--index-strategy",
        "first-index",
        "--index",
        "https://a.invalid/simple",
        "--default-index",
        "https://b.invalid/simple",
    ]
    assert index_args(["https://b.invalid/simple"], True) == [
        "--index-strategy",
        "unsafe-best-match",
        "--index",
        "https://b.invalid/simple",
    ]


def test_an_unreachable_registry_is_named_with_the_file_and_key_that_added_it(
    two_indexes, make_workspace, tmp_path, monkeypatch
):
    first, _ = two_indexes
    uv_env(monkeypatch, tmp_path)
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    dead = "http://user:s3cret@127.0.0.1:9/simple"
    shared = {"python": {"release": "20250517"}, "registries": {"additional": [first, dead]}}
    ws = _workspace(make_workspace, {"default": [first]}, shared=shared)
    with pytest.raises(StepError) as caught:
        _lock(ws)
    message = str(caught.value)
    assert "shared-config.json: registries.additional[1]" in message
    assert "127.0.0.1:9/simple" in message and "s3cret" not in message
