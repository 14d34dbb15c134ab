"""The OCI target: one image manifest per platform, an index tagged `<runtime>`, the catalogue under tag `catalogue`."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runenv import retry
from runenv.cache import sha256_file
from runenv.errors import PublishError, UsageError
from runenv.platforms import get_platform
from runenv.publish.artifacts import LocalArtifact
from runenv.publish.catalogue import (
    CATALOGUE_NAME,
    Catalogue,
    Entries,
    empty_catalogue,
    parse_catalogue,
    render_catalogue,
    with_entries,
)
from runenv.publish.targets.base import Credentials, Progress, RemoteFile, is_loopback, refuse_plain_http
from runenv.publish.transport import PublishClient
from runenv.redact import redact

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.runenv.build.manifest.v1+toml"
CATALOGUE_LAYER = "application/vnd.runenv.catalogue.v1+json"
CATALOGUE_ARTIFACT = "application/vnd.runenv.catalogue.v1"
EMPTY = "application/vnd.oci.empty.v1+json"
CATALOGUE_TAG = "catalogue"
ENTRY_ARTIFACT = "application/vnd.runenv.catalogue-entry.v1"
ENTRY_KEY = "org.runenv.catalogue.entry"
RECONCILE_ATTEMPTS = 30
BLOB_RETRIES = 8
TITLE = "org.opencontainers.image.title"
PLATFORM_KEY = "org.runenv.platform"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def registry_base(url: str, insecure: bool) -> tuple[str, str]:
    """(`http(s)://host/v2/<repo>/`, repository) for `oci://host[:port]/repo`; plain http only for loopback or
    --insecure."""
    parts = urllib.parse.urlsplit(url)
    repo = parts.path.strip("/")
    host = parts.netloc.rsplit("@", 1)[-1]
    if not host or not repo:
        raise UsageError(
            f"OCI target {redact(url)!r} names no repository",
            hint="use oci://host[:port]/repository, e.g. oci://127.0.0.1:5000/runenv/python",
        )
    scheme = "http" if insecure or is_loopback(parts.hostname) else "https"
    return f"{scheme}://{host}/v2/{repo}/", repo


def layer_manifest(artifact: LocalArtifact, config_digest: str, config_size: int) -> dict[str, Any]:
    """The image manifest of one platform: the runenv manifest TOML as config, the tarball as the one layer."""
    title = {TITLE: artifact.filename}
    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config_digest, "size": config_size},
        "layers": [
            {
                "mediaType": artifact.layer_media_type,
                "digest": f"sha256:{artifact.sha256}",
                "size": artifact.size,
                "annotations": title,
            }
        ],
        "annotations": {
            **title,
            "org.runenv.runtime": artifact.runtime,
            PLATFORM_KEY: artifact.platform,
            "org.runenv.python.version": artifact.python_version,
        },
    }


def index_with(index: dict[str, Any] | None, platform: str, digest: str, size: int) -> dict[str, Any]:
    """The runtime's image index with `platform`'s entry added or replaced, entries sorted by platform."""
    entries = [m for m in (index or {}).get("manifests", []) if m.get("annotations", {}).get(PLATFORM_KEY) != platform]
    entries.append(
        {
            "mediaType": MANIFEST,
            "digest": digest,
            "size": size,
            "platform": get_platform(platform).oci_platform,
            "annotations": {PLATFORM_KEY: platform},
        }
    )
    entries.sort(key=lambda m: m.get("annotations", {}).get(PLATFORM_KEY, ""))
    return {"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}


class OciTarget:
    """`oci://host[:port]/repository` on an OCI distribution registry."""

    def __init__(self, url: str, creds: Credentials, *, timeout: float, insecure: bool = False) -> None:
        self.base, self.repo = registry_base(url, insecure)
        refuse_plain_http(self.base, creds)
        self.display = "oci://" + self.base.split("://", 1)[1].replace("/v2/", "/", 1).rstrip("/")
        self.http = PublishClient(creds, timeout)
        self._manifests: dict[tuple[str, str], tuple[str, int]] = {}  # (runtime, platform) → platform manifest

    # -- manifests and blobs --------------------------------------------------------------

    def _get_manifest(self, reference: str, what: str) -> tuple[dict[str, Any], str] | None:
        response = self.http.request(
            "GET", self.base + f"manifests/{reference}", what, ok=(200, 404), headers={"Accept": f"{INDEX}, {MANIFEST}"}
        )
        if response.status_code == 404:
            return None
        try:
            return response.json(), _digest(response.content)
        except ValueError:
            raise PublishError(f"{what}: {self.display}:{reference} is not a JSON manifest") from None

    def _put_manifest(
        self,
        reference: str,
        document: dict[str, Any] | Callable[[], dict[str, Any]],
        media_type: str,
        what: str,
        blobs: tuple[tuple[Path | bytes, str], ...] = (),
    ) -> tuple[str, int]:
        """PUT a manifest; when the registry reports something it references unknown, push `blobs` again and retry.

        Two publishers pushing the same blob or manifest at once (the empty config, a catalogue, the platform
        manifest of one artifact published twice) can leave the registry briefly without it, so an index whose
        children all exist can still be refused for a moment.
        """
        for attempt in retry.contended(BLOB_RETRIES):
            if attempt > 1:
                for body, digest in blobs:
                    self._push_blob(body, digest, what)
            data = _canonical(document() if callable(document) else document)  # a shared index: read again
            response = self.http.request(
                "PUT",
                self.base + f"manifests/{reference}",
                what,
                body=data,
                headers={"Content-Type": media_type},
                ok=(201, 400),
            )
            if response.status_code == 201:
                return _digest(data), len(data)
            if "BLOB_UNKNOWN" not in response.text:
                break
        raise self.http.status_error(response, what)

    def _has_manifest(self, digest: str, what: str) -> bool:
        response = self.http.request(
            "HEAD", self.base + f"manifests/{digest}", what, ok=(200, 404), headers={"Accept": f"{INDEX}, {MANIFEST}"}
        )
        return response.status_code == 200

    def _blob_size(self, digest: str, what: str) -> int | None:
        response = self.http.request("HEAD", self.base + f"blobs/{digest}", what, ok=(200, 404))
        if response.status_code == 404:
            return None
        if response.headers.get("Docker-Content-Digest", digest) != digest:
            raise PublishError(
                f"{what}: registry returned digest {response.headers['Docker-Content-Digest']} for blob {digest}"
            )
        return int(response.headers.get("Content-Length", "-1"))

    def _push_blob(self, body: Path | bytes, digest: str, what: str, progress: Progress | None = None) -> bool:
        """POST an upload session, then PUT the whole blob into it (streamed), unless the registry has it.

        False when the registry already had it (content-addressed: it verified those bytes when they came).
        """
        if self._blob_size(digest, what) is not None:
            return False
        started = self.http.request("POST", self.base + "blobs/uploads/", what, ok=(202,))
        location = urllib.parse.urljoin(self.base, started.headers.get("Location", ""))
        separator = "&" if urllib.parse.urlsplit(location).query else "?"
        self.http.request(
            "PUT",
            f"{location}{separator}digest={urllib.parse.quote(digest)}",
            what,
            body=body,
            headers={"Content-Type": "application/octet-stream"},
            ok=(201,),
            progress=progress,
        )
        return True

    def _layer_of(self, index: dict[str, Any], platform: str, what: str) -> dict[str, Any] | None:
        for entry in index.get("manifests", []):
            if entry.get("annotations", {}).get(PLATFORM_KEY) == platform:
                found = self._get_manifest(entry["digest"], what)
                layers = found[0].get("layers", []) if found else []
                return layers[0] if layers else None
        return None

    # -- the Target interface ------------------------------------------------------------

    def lookup(self, artifact: LocalArtifact) -> RemoteFile | None:
        what = f"checking {artifact.filename}"
        found = self._get_manifest(artifact.runtime, what)
        if found is None:
            return None
        layer = self._layer_of(found[0], artifact.platform, what)
        if layer is None:
            return None
        entry = next(
            m for m in found[0]["manifests"] if m.get("annotations", {}).get(PLATFORM_KEY) == artifact.platform
        )
        self._manifests[(artifact.runtime, artifact.platform)] = (entry["digest"], int(entry["size"]))
        return RemoteFile(int(layer.get("size", -1)), str(layer.get("digest", "")).removeprefix("sha256:"))

    def upload(self, artifact: LocalArtifact, progress: Progress) -> RemoteFile:
        what = f"uploading {artifact.filename}"
        config_digest = "sha256:" + sha256_file(artifact.manifest)
        self._push_blob(artifact.manifest, config_digest, what)
        layer_digest = f"sha256:{artifact.sha256}"
        if self._push_blob(artifact.tarball, layer_digest, what, progress):  # not when another publisher pushed it
            self.http.check_sent(artifact)  # the registry also refuses bytes that do not match the digest
        manifest = layer_manifest(artifact, config_digest, artifact.manifest.stat().st_size)
        digest = _digest(_canonical(manifest))
        blobs = ((artifact.manifest, config_digest), (artifact.tarball, layer_digest))
        if not self._has_manifest(digest, what):  # rewriting it would unsettle another publisher's index
            self._put_manifest(digest, manifest, MANIFEST, what, blobs)
        manifest_size = len(_canonical(manifest))
        self._manifests[(artifact.runtime, artifact.platform)] = (digest, manifest_size)

        def index() -> dict[str, Any]:
            current = self._get_manifest(artifact.runtime, what)
            return index_with(current[0] if current else None, artifact.platform, digest, manifest_size)

        self._put_manifest(artifact.runtime, index, INDEX, what)
        size = self._blob_size(layer_digest, f"verifying {artifact.filename}")
        if size is None:
            raise PublishError(f"verifying {artifact.filename}: {self.display} lacks blob {layer_digest} after upload")
        return RemoteFile(size, artifact.sha256)

    def location(self, artifact: LocalArtifact) -> dict[str, str]:
        return {"file": artifact.filename, "ref": f"{self.display}:{artifact.runtime}"}

    def read_catalogue(self) -> Catalogue | None:
        what = "reading the catalogue"
        found = self._get_manifest(CATALOGUE_TAG, what)
        if found is None:
            return None
        layers = found[0].get("layers", [])
        if not layers:
            raise PublishError(f"{what}: {self.display}:{CATALOGUE_TAG} has no layer")
        response = self.http.request("GET", self.base + f"blobs/{layers[0]['digest']}", what)
        return parse_catalogue(response.content, f"{self.display}:{CATALOGUE_TAG}")

    def write_catalogue(self, catalogue: Catalogue) -> None:
        """Push index.json as the one layer of an artifact tagged `catalogue` (a tag moves atomically)."""
        what = "writing the catalogue"
        data = render_catalogue(catalogue)
        empty = b"{}"
        self._push_blob(empty, _digest(empty), what)
        self._push_blob(data, _digest(data), what)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": CATALOGUE_ARTIFACT,
            "config": {"mediaType": EMPTY, "digest": _digest(empty), "size": len(empty)},
            "layers": [
                {
                    "mediaType": CATALOGUE_LAYER,
                    "digest": _digest(data),
                    "size": len(data),
                    "annotations": {TITLE: CATALOGUE_NAME},
                }
            ],
        }
        self._put_manifest(CATALOGUE_TAG, manifest, MANIFEST, what, ((empty, _digest(empty)), (data, _digest(data))))

    def add_to_catalogue(self, entries: Entries) -> None:
        """Record each entry under its own tag, then rebuild the runtime indexes and the catalogue from all of them."""
        for artifact, entry in entries:
            digest, size = self._manifests[(artifact.runtime, artifact.platform)]
            record = CatalogueRecord(artifact.runtime, artifact.platform, entry, digest, size)
            self._put_record(record)
        self._reconcile()

    # -- many publishers, one catalogue ----------------------------------------------------
    # A registry has no conditional tag update, so the shared tags (`<runtime>`, `catalogue`) are derived:
    # every publisher first writes its entries under tags of their own (`catalogue.<runtime>.<platform>`),
    # then rewrites the shared tags from every entry tag until a pass finds nothing to change. The last
    # write of a shared tag is followed by its writer's check, which sees every finished publisher's entries.

    def _put_record(self, record: CatalogueRecord) -> None:
        what = "recording the catalogue entry"
        old = self._record(record.tag, what)
        if old is not None and old.entry.get("sha256") == record.entry["sha256"] and old.digest == record.digest:
            return  # the same artifact again: keep its first published time
        empty = b"{}"
        self._push_blob(empty, _digest(empty), what)
        descriptor = {"mediaType": EMPTY, "digest": _digest(empty), "size": len(empty)}
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": ENTRY_ARTIFACT,
            "config": descriptor,
            "layers": [descriptor],
            "annotations": {ENTRY_KEY: json.dumps(record.as_json(), sort_keys=True)},
        }
        self._put_manifest(record.tag, manifest, MANIFEST, what, ((empty, _digest(empty)),))

    def _record(self, tag: str, what: str) -> CatalogueRecord | None:
        found = self._get_manifest(tag, what)
        if found is None:
            return None
        try:
            return CatalogueRecord.from_json(json.loads(found[0]["annotations"][ENTRY_KEY]))
        except (KeyError, TypeError, ValueError):
            raise PublishError(f"{what}: {self.display}:{tag} is not a runenv catalogue entry") from None

    def _tags(self, what: str) -> list[str]:
        """Every tag of the repository (following the registry's pagination links)."""
        tags: list[str] = []
        url: str | None = self.base + "tags/list?n=1000"
        while url:
            response = self.http.request("GET", url, what, ok=(200, 404))
            if response.status_code == 404:
                return tags
            tags += response.json().get("tags") or []
            link = response.links.get("next", {}).get("url")
            url = urllib.parse.urljoin(self.base, link) if link else None
        return tags

    def _reconcile(self) -> None:
        """Rewrite the `<runtime>` indexes and the `catalogue` tag from every entry tag until nothing changes."""
        what = "updating the catalogue"
        for _ in retry.contended(RECONCILE_ATTEMPTS):
            records = [
                r
                for tag in self._tags(what)
                if tag.startswith(f"{CATALOGUE_TAG}.")
                for r in [self._record(tag, what)]
                if r is not None
            ]
            wrote = False
            for runtime in sorted({r.runtime for r in records}):
                found = self._get_manifest(runtime, what)
                current = found[0] if found else None
                wanted = current
                for r in (r for r in records if r.runtime == runtime):
                    wanted = index_with(wanted, r.platform, r.digest, r.size)
                if wanted is not None and wanted != current:
                    self._put_manifest(runtime, wanted, INDEX, what)
                    wrote = True
            before = self.read_catalogue()
            after = with_entries(before or empty_catalogue(), [(r, r.entry) for r in records])
            if after != before:
                self.write_catalogue(after)
                wrote = True
            if not wrote:
                return
        raise PublishError(
            f"{what}: {self.display} kept changing under {RECONCILE_ATTEMPTS} attempts (other publishers at work)",
            hint="re-run the publish: what is published is found and catalogued",
        )

    def close(self) -> None:
        self.http.close()


@dataclass(frozen=True)
class CatalogueRecord:
    """One catalogue entry as its own tag: the entry, and the platform manifest the runtime index lists."""

    runtime: str
    platform: str
    entry: dict[str, Any]
    digest: str
    size: int

    @property
    def tag(self) -> str:
        return f"{CATALOGUE_TAG}.{self.runtime}.{self.platform}"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CatalogueRecord:
        return cls(data["runtime"], data["platform"], dict(data["entry"]), data["digest"], int(data["size"]))
