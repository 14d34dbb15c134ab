"""Index credentials: from index URLs, the uv/pip environment or netrc, applied to artifact URLs, never written."""

from __future__ import annotations

from pathlib import Path

import pytest

from runenv.credentials import IndexCredentials, machine_index_urls
from tests.helpers import HOST
from tests.helpers.built import grep_tree
from tests.helpers.index import PRIVATE_PASSWORD, PRIVATE_USER, TestIndex, uv_env, with_credentials
from tests.helpers.pbs import VERSION

SECRET = "SECRETz8Q4"
TOOL_A = {"packages": {"dependencies": ["tool-a"]}, "build": {"platforms": [HOST]}}


def test_credentials_apply_by_realm_longest_prefix_first_then_netrc(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine other.test login n password netrc-pass\n")
    creds = IndexCredentials(
        ["https://a:1@idx.test/simple", "https://b:2@idx.test/team/simple/", "http://c:3@idx.test:8080/"],
        netrc_file=netrc,
    )
    assert creds.auth_for("https://idx.test/team/simple/x/") == ("b", "2")
    assert creds.auth_for("https://idx.test/simple/x/") == ("a", "1")
    assert creds.auth_for("https://idx.test/files/x-1.0-py3-none-any.whl") in {("a", "1"), ("b", "2")}
    assert creds.auth_for("http://idx.test:8080/files/x.whl") == ("c", "3")
    assert creds.auth_for("http://idx.test/files/x.whl") is None  # other scheme and port: not that realm
    assert creds.auth_for("https://other.test/x.whl") == ("n", "netrc-pass")
    assert creds.auth_for("https://third.test/x.whl") is None


def test_machine_index_urls_read_uv_and_pip_variables() -> None:
    env = {
        "UV_DEFAULT_INDEX": "https://d.test/simple",
        "UV_INDEX": "team=https://t.test/simple https://u.test/simple",
        "PIP_EXTRA_INDEX_URL": "https://p.test/simple https://d.test/simple",
    }
    assert machine_index_urls(env) == [
        "https://d.test/simple",
        "https://t.test/simple",
        "https://u.test/simple",
        "https://p.test/simple",
    ]


@pytest.mark.parametrize("source", ["config", "UV_DEFAULT_INDEX", "UV_INDEX_URL", "UV_INDEX", "netrc"])
def test_private_index_locks_and_downloads_without_writing_credentials(
    private_index: TestIndex,
    build_workspace,
    run_cli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sandbox: Path,
    source: str,
) -> None:
    authed = with_credentials(private_index.simple)
    runtime = dict(TOOL_A)
    if source == "config":
        uv_env(monkeypatch, tmp_path)  # no machine index at all
        runtime["registries"] = {"default": [authed]}
    elif source == "netrc":
        uv_env(monkeypatch, tmp_path, private_index.simple)
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine 127.0.0.1 login {PRIVATE_USER} password {PRIVATE_PASSWORD}\n")
        monkeypatch.setenv("NETRC", str(netrc))
    elif source == "UV_INDEX":  # searched before the sandbox's unreachable default index, which first-index skips
        monkeypatch.setenv(source, f"private={authed}")
        runtime["registries"] = {"indexStrategy": "first-index"}
    else:
        for var in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
            monkeypatch.delenv(var)
        monkeypatch.setenv(source, authed)
    ws = build_workspace(runtimes={VERSION: runtime})
    lock = run_cli("-w", ws, "lock", VERSION)
    assert lock.code == 0, lock.stderr
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    assert private_index.server.count("/files/tool_a-1.0-py3-none-any.whl") >= 1
    lock_text = (ws / f"python-{VERSION}" / f"pylock.{HOST}.toml").read_text()
    assert private_index.url + "/files/tool_a-1.0-py3-none-any.whl" in lock_text
    for out in (lock, result):
        assert SECRET not in out.stdout + out.stderr
    written = [ws / "dist", ws / f"python-{VERSION}" / f"pylock.{HOST}.toml", sandbox / "runenv-cache"]
    assert grep_tree(SECRET, *written, *ws.glob(".runenv")) == []
