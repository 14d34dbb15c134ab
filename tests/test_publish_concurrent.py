"""Many publishers, one catalogue: concurrent `runenv publish` processes against every target type lose no entry."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.helpers.dist import make_artifact
from tests.helpers.publish_servers import PASSWORD, USER

PLATFORMS = ["linux-x64", "linux-aarch64", "macosx-x64", "macosx-aarch64", "windows-x64"]
# Eight different artifacts, then two of them a second time (the same bytes, from another "runner").
JOBS = [("3.12.10", p) for p in PLATFORMS] + [("3.11.9", p) for p in PLATFORMS[:3]]
JOBS += [("3.12.10", "linux-x64"), ("3.11.9", "linux-aarch64")]

Reader = Callable[[str], bytes]  # catalogue "file" (or OCI ref) → bytes


def _oci_reader(server) -> tuple[str, dict, Reader, Callable[[str, str], bytes]]:
    def blob(digest: str) -> bytes:
        return server.get(f"runenv/python/blobs/{digest}").content

    def manifest(ref: str) -> dict:
        accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
        return server.get(f"runenv/python/manifests/{ref}", accept=accept).json()

    catalogue = json.loads(blob(manifest("catalogue")["layers"][0]["digest"]))

    def tarball(runtime: str, platform: str) -> bytes:
        index = manifest(runtime)
        entry = next(m for m in index["manifests"] if m["annotations"]["org.runenv.platform"] == platform)
        return blob(manifest(entry["digest"])["layers"][0]["digest"])

    return f"oci://{server.host}/runenv/python", catalogue, lambda _file: b"", tarball


def _target(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """The target URL for `kind` and the environment its publishers need."""
    if kind == "directory":
        return str(tmp_path / "store"), {}
    if kind == "webdav":
        server = request.getfixturevalue("nginx")
        return server.url, {"RUNENV_PUBLISH_USER": USER, "RUNENV_PUBLISH_PASSWORD": PASSWORD}
    if kind == "oci":
        return f"oci://{request.getfixturevalue('registry').host}/runenv/python", {}
    server = request.getfixturevalue("s3_server")
    return f"s3://{server.bucket}/runtimes", server.env()


def _published(kind: str, request: pytest.FixtureRequest, url: str) -> tuple[dict, Callable[[str, str, dict], bytes]]:
    """The target's catalogue, and a reader of the tarball a (runtime, platform) entry names."""
    if kind == "directory":
        root = Path(url)
        return json.loads((root / "index.json").read_text()), lambda _r, _p, e: (root / e["file"]).read_bytes()
    if kind == "webdav":

        def get(path: str) -> bytes:
            response = httpx.get(url + path, auth=(USER, PASSWORD), timeout=30)
            response.raise_for_status()
            return response.content

        return json.loads(get("index.json")), lambda _r, _p, e: get(e["file"])
    if kind == "oci":
        _, catalogue, _, tarball = _oci_reader(request.getfixturevalue("registry"))
        return catalogue, lambda r, p, _e: tarball(r, p)
    server = request.getfixturevalue("s3_server")
    return json.loads(server.get("runtimes/index.json")), lambda _r, _p, e: server.get(f"runtimes/{e['file']}")


@pytest.mark.parametrize("kind", ["directory", "webdav", "oci", "s3"])
def test_concurrent_publishers_land_in_one_catalogue(kind, request, make_workspace, tmp_path):
    url, extra_env = _target(kind, request, tmp_path)
    ws = make_workspace(runtimes={"3.12.10": {}, "3.11.9": {}})
    expected = {}
    for runtime, platform in dict.fromkeys(JOBS):
        artifact = make_artifact(ws, runtime, platform, payload=1024 * 1024)
        expected[(runtime, platform)] = artifact.sha256
    env = {**os.environ, **extra_env, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "runenv", "-w", str(ws), "publish", runtime, "--platform", platform, "--to", url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for runtime, platform in JOBS
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    failures = [err for code, _out, err in results if code != 0]
    assert failures == []

    catalogue, tarball = _published(kind, request, url)
    listed = {(rt, p): e for rt, platforms in catalogue["runtimes"].items() for p, e in platforms.items()}
    assert {key: e["sha256"] for key, e in listed.items()} == expected
    for (runtime, platform), entry in listed.items():
        body = tarball(runtime, platform, entry)
        assert hashlib.sha256(body).hexdigest() == entry["sha256"] and len(body) == entry["size"]
