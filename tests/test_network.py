"""The repository's own runtimes resolve on every platform against the machine's configured index.

Marked `network` (deselected by default): run with `python3 -m pytest -m network`.
"""

from __future__ import annotations

import os
import shutil

import pytest

from runenv.build.packages.lock import lock_runtime, read_lock
from runenv.config import load_runtime_config
from runenv.plan import build_plan
from runenv.platforms import PLATFORM_KEYS
from runenv.workspace import Workspace
from tests.conftest import MACHINE_ENV, REPO

pytestmark = pytest.mark.network

RUNTIMES = [rt.name for rt in Workspace(REPO).runtimes()]


@pytest.fixture
def machine_index(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Undo the sandbox's unreachable index: uv sees what the machine is configured with."""
    for key in [k for k in os.environ if k.startswith(("UV_", "PIP_"))]:
        monkeypatch.delenv(key)
    for key, value in MACHINE_ENV.items():
        if key.startswith(("UV_", "PIP_")):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_repo_runtime_locks_wheel_only_on_every_platform(machine_index, tmp_path, runtime):
    ws_root = tmp_path / "ws"
    shutil.copytree(REPO, ws_root, ignore=shutil.ignore_patterns(".git", "dist", ".runenv", "pylock.*", "tests"))
    ws = Workspace(ws_root)
    loaded = load_runtime_config(ws, ws.runtime(runtime))
    for platform in PLATFORM_KEYS:
        plan = build_plan(loaded, platform)
        lock_runtime(loaded, plan)
        lock = read_lock(loaded.runtime.lock_path(platform))
        names = {p.name for p in lock.packages}
        assert {p.name for p in plan.installable} <= names, platform
        assert all(p.kind == "wheel" for p in lock.packages), platform
        assert lock.skipped == [], platform
