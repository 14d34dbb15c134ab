"""Publish transport safety: credentials never shown (in any encoding) nor sent where they do not belong,
the bytes hashed are the bytes uploaded, and a symlinked tarball is refused."""

from __future__ import annotations

import base64
import os
import urllib.parse
from pathlib import Path

import pytest

from runenv.errors import PublishError
from runenv.publish import open_target, plan_item, publish
from runenv.workspace import find_workspace
from tests.helpers.publish_servers import HostileServer

SECRET = "SECRETz8Q4"
USER = "publisher"
PASSWORD = f"{SECRET}-pa/ss@word"  # its URL-encoded form differs from the raw one


def shown_forms() -> list[str]:
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return [SECRET, basic, urllib.parse.quote(PASSWORD, safe=""), urllib.parse.quote_plus(PASSWORD)]


@pytest.mark.parametrize("how", ["basic", "token", "in-url"])
def test_a_server_echoing_the_authorization_header_shows_no_credential(
    run_cli, dist_workspace, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    with HostileServer() as server:
        url = server.url
        if how == "basic":
            monkeypatch.setenv("RUNENV_PUBLISH_USER", USER)
            monkeypatch.setenv("RUNENV_PUBLISH_PASSWORD", PASSWORD)
        elif how == "token":
            monkeypatch.setenv("RUNENV_PUBLISH_TOKEN", f"{SECRET}-token")
        else:
            url = url.replace("://", f"://{USER}:{urllib.parse.quote(PASSWORD, safe='')}@")
        for extra in ([], ["-v"], ["-o", "json"]):
            result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", url, *extra)
            assert result.code == 1
            assert "you sent Authorization" in result.stderr  # the server's words are shown...
            for form in shown_forms():
                assert form not in result.stdout + result.stderr, form  # ...without the credentials
        assert server.authorizations()  # they were really sent (to loopback)


def test_no_credentials_over_plain_http_to_a_host_that_is_not_loopback(
    run_cli, dist_workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNENV_PUBLISH_USER", USER)
    monkeypatch.setenv("RUNENV_PUBLISH_PASSWORD", PASSWORD)
    with HostileServer() as proxy:  # what a network in between sees
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "")
        for target in ("http://publish.example.invalid/runtimes/", "oci://registry.example.invalid/runenv/python"):
            extra = ["--insecure"] if target.startswith("oci") else []
            result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target, *extra)
            assert result.code == 2, result.stderr
            assert "plain HTTP" in result.stderr and "example.invalid" in result.stderr
        assert proxy.authorizations() == []


def test_basic_credentials_never_go_to_a_bearer_realm_on_another_host(
    run_cli, dist_workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNENV_PUBLISH_USER", USER)
    monkeypatch.setenv("RUNENV_PUBLISH_PASSWORD", PASSWORD)
    with HostileServer(lambda *_: (401, {}, b"no")) as realm:
        challenge = f'Bearer realm="http://localhost:{realm.port}/token",service="registry"'

        def registry(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            return 401, {"WWW-Authenticate": challenge}, b""

        with HostileServer(registry) as server:
            result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", f"oci://127.0.0.1:{server.port}/rt")
        assert result.code == 1
        assert [path for _m, path, _h in realm.seen] and all(p.startswith("/token") for _m, p, _h in realm.seen)
        assert realm.authorizations() == []  # asked for an anonymous token only


def test_a_symlinked_tarball_is_refused(run_cli, dist_workspace: Path, tmp_path: Path) -> None:
    tarball = dist_workspace / "dist" / "python-3.12.10-linux-x64.tar.gz"
    moved = tmp_path / "elsewhere.tar.gz"
    os.replace(tarball, moved)
    tarball.symlink_to(moved)
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", tmp_path / "target")
    assert result.code == 1
    assert "symlink" in result.stderr and tarball.name in result.stderr
    assert not (tmp_path / "target" / "3.12.10" / "linux-x64").exists()


def test_a_tarball_changed_after_its_check_is_not_left_published(dist_workspace: Path, nginx, monkeypatch) -> None:
    from tests.helpers.publish_servers import PASSWORD as NGINX_PASSWORD
    from tests.helpers.publish_servers import USER as NGINX_USER

    monkeypatch.setenv("RUNENV_PUBLISH_USER", NGINX_USER)
    monkeypatch.setenv("RUNENV_PUBLISH_PASSWORD", NGINX_PASSWORD)
    ws = find_workspace(explicit=dist_workspace)
    target = open_target(nginx.url, timeout=30)
    try:
        item = plan_item(ws, ws.runtime("3.12.10"), "linux-x64", target, force=False)
        assert item.action == "upload"
        tarball = dist_workspace / "dist" / "python-3.12.10-linux-x64.tar.gz"
        data = bytearray(tarball.read_bytes())
        data[-100] ^= 0xFF  # same size, other bytes: changed in place after the check
        tarball.write_bytes(bytes(data))
        with pytest.raises(PublishError, match="changed"):
            publish(target, [item], dry_run=False, progress=lambda _i: lambda _n: None)
    finally:
        target.close()
    assert not (nginx.root / "runtimes" / "3.12.10" / "linux-x64" / tarball.name).exists()
    assert not (nginx.root / "runtimes" / "index.json").exists()
