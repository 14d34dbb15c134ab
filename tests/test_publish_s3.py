"""`runenv publish --to s3://…` against moto's S3-compatible server on loopback."""

from __future__ import annotations

import hashlib
import json

import pytest

from runenv.publish.targets import s3
from tests.helpers.dist import make_artifact


def target(server, prefix: str = "runtimes") -> str:
    return f"s3://{server.bucket}/{prefix}"


def test_publish_then_fetch_back_through_the_catalogue(run_cli, dist_workspace, s3_server):
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target(s3_server))
    assert result.code == 0, result.stderr
    assert f"target s3://{s3_server.bucket}/runtimes" in result.stdout
    catalogue = json.loads(s3_server.get("runtimes/index.json"))
    for platform in ("linux-x64", "windows-x64"):
        entry = catalogue["runtimes"]["3.12.10"][platform]
        assert entry["file"] == f"3.12.10/{platform}/python-3.12.10-{platform}.tar.gz"
        body = s3_server.get(f"runtimes/{entry['file']}")
        assert body == (dist_workspace / f"dist/python-3.12.10-{platform}.tar.gz").read_bytes()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"] and len(body) == entry["size"]
        assert s3_server.get(f"runtimes/{entry['file']}.sha256").split()[0].decode() == entry["sha256"]
        assert s3_server.get(f"runtimes/3.12.10/{platform}/python-3.12.10-{platform}.manifest.toml")


def test_repeat_is_a_no_op_and_conflict_is_refused_until_forced(run_cli, dist_workspace, s3_server):
    to = target(s3_server)
    assert run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", to).code == 0
    catalogue = s3_server.get("runtimes/index.json")
    again = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", to, "-o", "json")
    assert again.code == 0 and again.json()["uploaded"] == [] and len(again.json()["skipped"]) == 2
    assert s3_server.get("runtimes/index.json") == catalogue

    key = "runtimes/3.12.10/linux-x64/python-3.12.10-linux-x64.tar.gz"
    old = s3_server.get(key)
    rebuilt = make_artifact(dist_workspace, "3.12.10", "linux-x64", salt="other")
    refused = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", to)
    assert refused.code == 1 and rebuilt.sha256 in refused.stderr
    assert s3_server.get(key) == old
    forced = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", to, "--force")
    assert forced.code == 0, forced.stderr
    assert s3_server.get(key) == rebuilt.tarball.read_bytes()
    assert json.loads(s3_server.get("runtimes/index.json"))["runtimes"]["3.12.10"]["linux-x64"]["sha256"] == (
        rebuilt.sha256
    )


def test_an_object_created_by_someone_else_first_is_not_overwritten(dist_workspace, s3_server):
    """Between lookup and upload another publisher creates the name: If-None-Match keeps their bytes."""
    from runenv.publish import open_target, plan_item, publish
    from runenv.workspace import find_workspace

    ws = find_workspace(explicit=dist_workspace)
    rt = ws.runtime("3.12.10")
    opened = open_target(target(s3_server), timeout=30)
    item = plan_item(ws, rt, "linux-x64", opened, False)
    assert item.action == "upload"
    key = "runtimes/3.12.10/linux-x64/python-3.12.10-linux-x64.tar.gz"
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=key, Body=b"theirs")
    with pytest.raises(s3.PublishError, match="does not match after upload"):
        publish(opened, [item], dry_run=False, progress=lambda _item: lambda _n: None)
    assert s3_server.get(key) == b"theirs"
    opened.close()


def test_large_tarball_goes_up_in_parts(run_cli, make_workspace, s3_server, monkeypatch):
    monkeypatch.setattr(s3, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    monkeypatch.setattr(s3, "PART_SIZE", 5 * 1024 * 1024)  # S3's smallest part
    ws = make_workspace(shared={"build": {"platforms": ["linux-x64"]}})
    big = make_artifact(ws, "3.12.10", "linux-x64", payload=12 * 1024 * 1024)
    result = run_cli("-w", ws, "publish", "3.12.10", "--to", target(s3_server, "big"))
    assert result.code == 0, result.stderr
    key = "big/3.12.10/linux-x64/python-3.12.10-linux-x64.tar.gz"
    head = s3_server.client().head_object(Bucket=s3_server.bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-3")  # three parts
    assert s3_server.get(key) == big.tarball.read_bytes()


def test_errors_are_one_line_without_credentials(run_cli, dist_workspace, s3_server):
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", "s3://no-such-bucket-here/x")
    assert result.code == 1
    assert "no-such-bucket-here" in result.stderr and "Traceback" not in result.stderr
    assert s3_server.secret not in result.stderr + result.stdout
    assert len(result.error.strip().splitlines()) <= 3


def test_s3_url_without_bucket_is_a_usage_error(run_cli, dist_workspace):
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", "s3:///x")
    assert result.code == 2 and "bucket" in result.stderr
