"""`runenv publish --to http://…` against a real nginx WebDAV server with basic auth on loopback."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from runenv.errors import PublishError
from runenv.publish import open_target, plan_item, publish
from runenv.workspace import find_workspace
from tests.helpers.dist import make_artifact
from tests.helpers.publish_servers import PASSWORD, USER


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNENV_PUBLISH_USER", USER)
    monkeypatch.setenv("RUNENV_PUBLISH_PASSWORD", PASSWORD)


def stored(nginx, relative: str) -> Path:
    return nginx.root / "runtimes" / relative


def get(url: str) -> httpx.Response:
    return httpx.get(url, auth=(USER, PASSWORD), timeout=30)


def test_publish_then_fetch_back_through_the_catalogue(run_cli, dist_workspace, nginx, credentials):
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", nginx.url)
    assert result.code == 0, result.stderr
    catalogue = get(nginx.url + "index.json").json()
    for platform in ("linux-x64", "windows-x64"):
        entry = catalogue["runtimes"]["3.12.10"][platform]
        body = get(nginx.url + entry["file"]).content
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert len(body) == entry["size"]
        local = dist_workspace / f"dist/python-3.12.10-{platform}.tar.gz"
        assert body == local.read_bytes()
        sidecar = get(nginx.url + entry["file"] + ".sha256").text
        assert sidecar.split()[0] == entry["sha256"]
    leftovers = [p.name for p in (nginx.root / "runtimes").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []  # the catalogue's temp name was moved into place


def test_repeat_is_a_no_op_and_conflict_is_refused_until_forced(run_cli, dist_workspace, nginx, credentials):
    assert run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", nginx.url).code == 0
    catalogue = stored(nginx, "index.json").read_bytes()
    again = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", nginx.url, "-o", "json")
    assert again.code == 0 and again.json()["uploaded"] == []
    assert len(again.json()["skipped"]) == 2
    assert stored(nginx, "index.json").read_bytes() == catalogue

    old = hashlib.sha256(stored(nginx, "3.12.10/linux-x64/python-3.12.10-linux-x64.tar.gz").read_bytes()).hexdigest()
    rebuilt = make_artifact(dist_workspace, "3.12.10", "linux-x64", salt="other")
    refused = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", nginx.url)
    assert refused.code == 1
    assert old in refused.stderr and rebuilt.sha256 in refused.stderr
    assert stored(nginx, "index.json").read_bytes() == catalogue

    forced = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", nginx.url, "--force")
    assert forced.code == 0, forced.stderr
    entry = get(nginx.url + "index.json").json()["runtimes"]["3.12.10"]["linux-x64"]
    assert entry["sha256"] == rebuilt.sha256
    assert hashlib.sha256(get(nginx.url + entry["file"]).content).hexdigest() == rebuilt.sha256


def test_wrong_credentials_fail_clearly_without_showing_them(run_cli, dist_workspace, nginx, monkeypatch):
    monkeypatch.setenv("RUNENV_PUBLISH_USER", USER)
    monkeypatch.setenv("RUNENV_PUBLISH_PASSWORD", "wrong-Secret-42")
    for extra in ([], ["-v"], ["-o", "json"]):
        result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", nginx.url, *extra)
        assert result.code == 1
        assert "401" in result.stderr and "rejected the credentials" in result.stderr
        assert "RUNENV_PUBLISH_PASSWORD" in result.stderr  # the hint says where credentials come from
        assert "wrong-Secret-42" not in result.stdout + result.stderr
    monkeypatch.delenv("RUNENV_PUBLISH_PASSWORD")
    monkeypatch.delenv("RUNENV_PUBLISH_USER")
    in_url = nginx.url.replace("http://", f"http://{USER}:wrong-Secret-42@")
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", in_url, "-v")
    assert result.code == 1 and "401" in result.stderr
    assert "wrong-Secret-42" not in result.stdout + result.stderr
    assert not stored(nginx, "index.json").exists()
    assert not stored(nginx, "3.12.10").exists()


def test_credentials_in_the_url_work_and_are_never_printed(run_cli, dist_workspace, nginx):
    in_url = nginx.url.replace("http://", f"http://{USER}:{PASSWORD}@")
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", in_url, "-v", "-o", "json")
    assert result.code == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert result.json()["targets"] == [nginx.url]


def test_server_dying_mid_upload_leaves_the_catalogue_unchanged(run_cli, dist_workspace, nginx, credentials):
    assert run_cli("-w", dist_workspace, "publish", "3.12.10", "--platform", "windows-x64", "--to", nginx.url).code == 0
    catalogue = stored(nginx, "index.json").read_bytes()
    make_artifact(dist_workspace, "3.12.10", "linux-x64", payload=8 << 20)
    ws = find_workspace(explicit=dist_workspace)
    target = open_target(nginx.url, timeout=30)
    item = plan_item(ws, ws.runtime("3.12.10"), "linux-x64", target, force=False)
    assert item.action == "upload"

    def crash_server(_item):
        return lambda sent: nginx.kill()

    with pytest.raises(PublishError) as failure:
        publish(target, [item], dry_run=False, progress=crash_server)
    target.close()
    assert "uploading python-3.12.10-linux-x64.tar.gz" in failure.value.message
    assert PASSWORD not in failure.value.message
    assert stored(nginx, "index.json").read_bytes() == catalogue
    assert not stored(nginx, "3.12.10/linux-x64").exists()
