"""`runenv publish --to oci://…` against a real CNCF distribution registry on loopback."""

from __future__ import annotations

import hashlib
import json

import pytest

from runenv.compat import tomllib
from runenv.errors import PublishError
from runenv.publish import open_target, plan_item, publish
from runenv.publish.targets.oci import CATALOGUE_TAG, CONFIG, INDEX, MANIFEST
from runenv.workspace import find_workspace
from tests.helpers.dist import make_artifact

REPO = "runenv/python"


def fetch_tarball(registry, tag: str, os_name: str, arch: str) -> tuple[bytes, dict, dict]:
    """What a client knowing only the tag does: index → platform manifest → layer blob by digest."""
    index = registry.get(f"{REPO}/manifests/{tag}", INDEX)
    assert index.status_code == 200
    assert index.headers["Content-Type"] == INDEX
    entry = next(m for m in index.json()["manifests"] if m["platform"] == {"os": os_name, "architecture": arch})
    manifest = registry.get(f"{REPO}/manifests/{entry['digest']}", MANIFEST).json()
    layer = manifest["layers"][0]
    blob = registry.get(f"{REPO}/blobs/{layer['digest']}").content
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
    return blob, manifest, layer


def test_publish_then_fetch_each_platform_by_tag_and_digest(run_cli, dist_workspace, registry):
    target = f"oci://{registry.host}/{REPO}"
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target)
    assert result.code == 0, result.stderr
    for platform, os_name in (("linux-x64", "linux"), ("windows-x64", "windows")):
        blob, manifest, layer = fetch_tarball(registry, "3.12.10", os_name, "amd64")
        local = dist_workspace / f"dist/python-3.12.10-{platform}.tar.gz"
        assert blob == local.read_bytes()
        assert layer["mediaType"] == "application/vnd.runenv.runtime.layer.v1.tar+gzip"
        assert layer["annotations"]["org.opencontainers.image.title"] == local.name
        assert manifest["annotations"]["org.runenv.platform"] == platform
        assert manifest["annotations"]["org.runenv.python.version"] == "3.12.10"
        assert manifest["config"]["mediaType"] == CONFIG
        config = registry.get(f"{REPO}/blobs/{manifest['config']['digest']}").content
        assert tomllib.loads(config.decode())["platform"] == platform


def test_catalogue_tag_lists_the_published_artifacts(run_cli, dist_workspace, registry):
    assert run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", f"oci://{registry.host}/{REPO}").code == 0
    manifest = registry.get(f"{REPO}/manifests/{CATALOGUE_TAG}", MANIFEST).json()
    catalogue = json.loads(registry.get(f"{REPO}/blobs/{manifest['layers'][0]['digest']}").content)
    entry = catalogue["runtimes"]["3.12.10"]["linux-x64"]
    local = dist_workspace / "dist/python-3.12.10-linux-x64.tar.gz"
    assert entry["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
    assert entry["ref"] == f"oci://{registry.host}/{REPO}:3.12.10"
    blob = registry.get(f"{REPO}/blobs/sha256:{entry['sha256']}").content
    assert blob == local.read_bytes()


def test_a_later_platform_joins_the_runtime_index(run_cli, dist_workspace, registry):
    target = f"oci://{registry.host}/{REPO}"
    assert run_cli("-w", dist_workspace, "publish", "3.12.10", "-p", "windows-x64", "--to", target).code == 0
    make_artifact(dist_workspace, "3.12.10", "macosx-aarch64")
    assert run_cli("-w", dist_workspace, "publish", "3.12.10", "-p", "macosx-aarch64", "--to", target).code == 0
    index = registry.get(f"{REPO}/manifests/3.12.10", INDEX).json()
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "arm64", "os": "darwin"},
        {"architecture": "amd64", "os": "windows"},
    ]
    blob, _, _ = fetch_tarball(registry, "3.12.10", "darwin", "arm64")
    assert blob == (dist_workspace / "dist/python-3.12.10-macosx-aarch64.tar.gz").read_bytes()


def test_repeat_is_a_no_op_and_conflict_is_refused_until_forced(run_cli, dist_workspace, registry):
    target = f"oci://{registry.host}/{REPO}"
    assert run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target).code == 0
    index = registry.get(f"{REPO}/manifests/3.12.10", INDEX).content
    again = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target, "-o", "json")
    assert again.code == 0 and again.json()["uploaded"] == [] and len(again.json()["skipped"]) == 2

    old = hashlib.sha256((dist_workspace / "dist/python-3.12.10-linux-x64.tar.gz").read_bytes()).hexdigest()
    rebuilt = make_artifact(dist_workspace, "3.12.10", "linux-x64", salt="other")
    refused = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target)
    assert refused.code == 1
    assert old in refused.stderr and rebuilt.sha256 in refused.stderr
    assert registry.get(f"{REPO}/manifests/3.12.10", INDEX).content == index

    forced = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target, "--force")
    assert forced.code == 0, forced.stderr
    blob, _, _ = fetch_tarball(registry, "3.12.10", "linux", "amd64")
    assert hashlib.sha256(blob).hexdigest() == rebuilt.sha256
    windows, _, _ = fetch_tarball(registry, "3.12.10", "windows", "amd64")
    assert windows == (dist_workspace / "dist/python-3.12.10-windows-x64.tar.gz").read_bytes()


def test_dry_run_pushes_nothing(run_cli, dist_workspace, registry):
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", f"oci://{registry.host}/{REPO}", "--dry-run")
    assert result.code == 0 and "would upload" in result.stdout
    assert registry.get(f"{REPO}/manifests/3.12.10", INDEX).status_code == 404
    assert registry.get(f"{REPO}/manifests/{CATALOGUE_TAG}", MANIFEST).status_code == 404


def test_oci_url_without_repository_is_a_usage_error(run_cli, dist_workspace, registry):
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", f"oci://{registry.host}")
    assert result.code == 2 and "repository" in result.stderr


def test_registry_dying_mid_upload_leaves_the_catalogue_unchanged(run_cli, dist_workspace, registry):
    target_url = f"oci://{registry.host}/{REPO}"
    assert run_cli("-w", dist_workspace, "publish", "3.12.10", "-p", "windows-x64", "--to", target_url).code == 0
    catalogue = registry.get(f"{REPO}/manifests/{CATALOGUE_TAG}", MANIFEST).content
    make_artifact(dist_workspace, "3.12.10", "linux-x64", payload=8 << 20)
    ws = find_workspace(explicit=dist_workspace)
    target = open_target(target_url, timeout=30)
    item = plan_item(ws, ws.runtime("3.12.10"), "linux-x64", target, force=False)
    with pytest.raises(PublishError) as failure:
        publish(target, [item], dry_run=False, progress=lambda _item: lambda sent: registry.kill())
    target.close()
    assert "uploading python-3.12.10-linux-x64.tar.gz" in failure.value.message
    registry.start()  # same storage, as after a restart
    assert registry.get(f"{REPO}/manifests/{CATALOGUE_TAG}", MANIFEST).content == catalogue
    index = registry.get(f"{REPO}/manifests/3.12.10", INDEX).json()
    assert [m["annotations"]["org.runenv.platform"] for m in index["manifests"]] == ["windows-x64"]
