"""No credential reaches anything runenv writes or prints: mirror, index and publish credentials all contain
SECRET, and after lock, build and publish nothing in the workspace, dist, cache, publish target or output does."""

from __future__ import annotations

from pathlib import Path

import pytest

from runenv.redact import redact, register_basic
from tests.helpers import HOST
from tests.helpers.built import grep_tree
from tests.helpers.http import StaticServer
from tests.helpers.index import TestIndex, uv_env, with_credentials
from tests.helpers.pbs import VERSION, PbsMirror
from tests.helpers.publish_servers import start_nginx

SECRET = "SECRETz8Q4"


def test_redact_hides_registered_secrets_in_every_encoding() -> None:
    register_basic("someone", "pa ss/SECRETz8Q4")
    text = "Basic c29tZW9uZTpwYSBzcy9TRUNSRVR6OFE0 pa%20ss%2FSECRETz8Q4 pa+ss%2FSECRETz8Q4 https://u:p@h/x"
    assert redact(text) == "Basic *** *** *** https://***@h/x"


def test_no_credential_in_anything_a_lock_build_and_publish_write_or_print(
    private_index: TestIndex,
    build_workspace,
    pbs_mirror: PbsMirror,
    run_cli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sandbox: Path,
) -> None:
    uv_env(monkeypatch, tmp_path)
    for var in ("UV_INDEX_URL", "PIP_INDEX_URL"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("UV_DEFAULT_INDEX", with_credentials(private_index.simple))
    mirror_auth = ("mirror-user", f"{SECRET}-mirror")
    with StaticServer(pbs_mirror.root, basic_auth=mirror_auth) as mirror:
        ws = build_workspace(
            runtimes={VERSION: {"packages": {"dependencies": ["tool-a"]}, "build": {"platforms": [HOST]}}}
        )
        monkeypatch.setenv("RUNENV_PBS_MIRROR", with_credentials(mirror.url, *mirror_auth))
        outputs = [
            run_cli("-w", ws, "lock", VERSION, "-v"),
            run_cli("-w", ws, "build", VERSION, "-v"),
            run_cli("-w", ws, "-o", "json", "build", VERSION),
            run_cli("-w", ws, "-o", "json", "config", "show", VERSION, "--platform", HOST),
        ]
        assert mirror.state.refused == [] and mirror.count("/*/cpython-*") == 1
    assert private_index.server.state.refused == []

    nginx = start_nginx(tmp_path / "publish", "publisher", f"{SECRET}-publish")
    try:
        monkeypatch.setenv("RUNENV_PUBLISH_USER", "publisher")
        monkeypatch.setenv("RUNENV_PUBLISH_PASSWORD", f"{SECRET}-publish")
        outputs.append(run_cli("-w", ws, "publish", VERSION, "--platform", HOST, "--to", nginx.url, "-v"))
        outputs.append(run_cli("-w", ws, "-o", "json", "publish", VERSION, "--platform", HOST, "--to", nginx.url))
    finally:
        nginx.stop()
    for result in outputs:
        assert result.code == 0, result.stderr
        assert SECRET not in result.stdout + result.stderr
    assert (nginx.root / "runtimes" / "index.json").is_file()
    assert grep_tree(SECRET, ws, sandbox / "runenv-cache", nginx.root, sandbox / "scratch") == []
