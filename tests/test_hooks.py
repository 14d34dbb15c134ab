"""`build.hooks.beforePack`: a command run on the staged prefix before packing (runenv/build/hooks.py)."""

from __future__ import annotations

import sys
import tarfile
import typing

import pytest

from runenv.compat import tomllib
from runenv.config.models import HookPlatform, HooksConfig
from runenv.platforms import PLATFORM_KEYS
from tests.helpers import HOST
from tests.helpers.built import dist_files, leftovers, read_manifest
from tests.helpers.pbs import RELEASE, VERSION

STEM = f"python-{VERSION}-{HOST}"

# Writes what the hook sees into the prefix, as a signing tool would change files there.
MARK = (
    "import os, pathlib; p = pathlib.Path(os.environ['RUNENV_PREFIX']) / 'SIGNED'; "
    "p.write_text(' '.join([os.environ['RUNENV_PLATFORM'], os.environ['RUNENV_RUNTIME'], os.getcwd()]))"
)


def test_hook_changes_what_is_packed_and_is_recorded(build_workspace, run_cli):
    hook = [sys.executable, "-c", MARK]
    ws = build_workspace(shared={"python": {"release": RELEASE}, "build": {"hooks": {"beforePack": {HOST: hook}}}})
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    with tarfile.open(ws / "dist" / f"{STEM}.tar.gz") as tar:
        signed = tar.extractfile(f"{STEM}/SIGNED").read().decode()
        inside = tomllib.loads(tar.extractfile(f"{STEM}/runenv-manifest.toml").read().decode())
    assert signed == f"{HOST} {VERSION} {ws}"
    assert inside["build"]["before-pack-hook"] == hook
    assert read_manifest(ws, STEM)["build"]["before-pack-hook"] == hook


def test_failing_hook_fails_the_build_and_leaves_nothing(build_workspace, run_cli):
    ws = build_workspace(
        shared={"python": {"release": RELEASE}, "build": {"hooks": {"beforePack": "echo no identity >&2; exit 3"}}}
    )
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: build.hooks.beforePack for linux-x64")
    assert "exit code 3" in error and "no identity" in error
    assert "Traceback" not in result.stderr
    assert dist_files(ws) == []
    assert leftovers(ws) == []


def test_platform_entry_beats_the_default_and_null_turns_it_off(build_workspace, run_cli):
    ws = build_workspace(
        shared={"python": {"release": RELEASE}, "build": {"hooks": {"beforePack": {"*": "exit 1", HOST: None}}}}
    )
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    assert "before-pack-hook" not in read_manifest(ws, STEM)["build"]


def test_hook_lookup():
    hooks = HooksConfig.model_validate({"beforePack": {"*": ["sign"], "windows-x64": "signtool sign"}})
    assert hooks.before_pack_for("macosx-aarch64") == ["sign"]
    assert hooks.before_pack_for("windows-x64") == "signtool sign"
    assert HooksConfig.model_validate({"beforePack": "x"}).before_pack_for("linux-x64") == "x"
    assert HooksConfig().before_pack_for("linux-x64") is None


@pytest.mark.parametrize("bad", [[], "  ", {"linux-x64": []}, {"linux-x65": ["x"]}])
def test_bad_hook_config_is_a_config_error(make_workspace, run_cli, bad):
    ws = make_workspace(shared={"build": {"hooks": {"beforePack": bad}}})
    result = run_cli("-w", ws, "config", "validate")
    assert result.code == 2
    assert "build.hooks.beforePack" in result.stderr


def test_hook_platform_keys_are_the_platform_table():
    assert typing.get_args(HookPlatform) == (*PLATFORM_KEYS, "*")
