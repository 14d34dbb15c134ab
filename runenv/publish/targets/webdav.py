"""The HTTP target: PUT into a WebDAV, Artifactory or Nexus raw store, same layout as a directory."""

from __future__ import annotations

import random
import secrets
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

from runenv.errors import PublishError
from runenv.publish.artifacts import LocalArtifact
from runenv.publish.catalogue import (
    CATALOGUE_NAME,
    Catalogue,
    Entries,
    merge_catalogue,
    parse_catalogue,
    render_catalogue,
)
from runenv.publish.targets.base import (
    Credentials,
    Progress,
    RemoteFile,
    artifact_dir,
    file_location,
    refuse_plain_http,
)
from runenv.publish.transport import Body, PublishClient
from runenv.redact import strip_userinfo

# Headers in which stores such as Artifactory and Nexus report a file's sha256, sparing a download.
CHECKSUM_HEADERS = ("X-Checksum-Sha256", "X-Checksum-SHA256")
LOCK_NAME = f".{CATALOGUE_NAME}.lock"  # a collection: MKCOL creates it atomically or fails
LOCK_STALE_AFTER = 60.0  # seconds one owner may hold the lock while we wait before it is taken as dead


class WebDavTarget:
    """`http(s)://host/path/`: files PUT under `<runtime>/<platform>/`, the catalogue moved into place."""

    def __init__(self, url: str, creds: Credentials, *, timeout: float) -> None:
        self.base = strip_userinfo(url).rstrip("/") + "/"
        self.display = self.base
        refuse_plain_http(self.base, creds)
        self.http = PublishClient(creds, timeout)

    def _url(self, relative: str) -> str:
        return self.base + urllib.parse.quote(relative)

    def _remote(self, url: str, what: str) -> RemoteFile | None:
        """Size and sha256 of `url`, or None when absent; the digest header if the store sends one, else GET."""
        head = self.http.request("HEAD", url, what, ok=(200, 404))
        if head.status_code == 404:
            return None
        for name in CHECKSUM_HEADERS:
            digest = head.headers.get(name)
            if digest and "content-length" in head.headers:
                return RemoteFile(int(head.headers["content-length"]), digest.lower())
        return self.http.hash_remote(url, what)

    def lookup(self, artifact: LocalArtifact) -> RemoteFile | None:
        return self._remote(self._url(self.location(artifact)["file"]), f"checking {artifact.filename}")

    def upload(self, artifact: LocalArtifact, progress: Progress) -> RemoteFile:
        folder = artifact_dir(artifact)
        what = f"uploading {artifact.filename}"
        for source in artifact.files():
            self._put(
                f"{folder}/{source.name}",
                source,
                f"uploading {source.name}",
                progress if source == artifact.tarball else None,
            )
            if source == artifact.tarball:
                try:
                    self.http.check_sent(artifact)
                except PublishError:  # the tarball changed after it was checked: take it back down
                    self.http.request("DELETE", self._url(f"{folder}/{source.name}"), what, ok=(200, 204, 404))
                    raise
        remote = self._remote(self._url(f"{folder}/{artifact.filename}"), f"verifying {artifact.filename}")
        if remote is None:
            raise PublishError(f"verifying {artifact.filename}: {self.display}{folder}/ does not list it after upload")
        return remote

    def location(self, artifact: LocalArtifact) -> dict[str, str]:
        return file_location(artifact)

    def read_catalogue(self) -> Catalogue | None:
        url = self._url(CATALOGUE_NAME)
        response = self.http.request("GET", url, "reading the catalogue", ok=(200, 404))
        if response.status_code == 404:
            return None
        return parse_catalogue(response.content, url)

    def write_catalogue(self, catalogue: Catalogue) -> None:
        """PUT under a temp name, then MOVE over index.json (plain PUT where the store has no MOVE)."""
        data = render_catalogue(catalogue)
        temp = f".{CATALOGUE_NAME}.{secrets.token_hex(6)}.tmp"
        what = "writing the catalogue"
        self._put(temp, data, what)
        moved = self.http.request(
            "MOVE",
            self._url(temp),
            what,
            ok=(201, 204, 405, 501),
            headers={"Destination": self._url(CATALOGUE_NAME), "Overwrite": "T"},
        )
        if moved.status_code in (405, 501):
            self._put(CATALOGUE_NAME, data, what)
            self.http.request("DELETE", self._url(temp), what, ok=(200, 204, 404))

    def add_to_catalogue(self, entries: Entries) -> None:
        """Read, merge and replace index.json while holding the `.index.json.lock/` collection."""
        with self._catalogue_lock():
            merge_catalogue(self, entries)

    @contextmanager
    def _catalogue_lock(self) -> Iterator[None]:
        """MKCOL `.index.json.lock/` (it fails while the collection exists, atomically), hold it, DELETE it.

        A lock held by the same owner for LOCK_STALE_AFTER seconds of waiting (a publisher that died) is broken.
        """
        what = "locking the catalogue"
        token = secrets.token_hex(8)
        lock = self._url(f"{LOCK_NAME}/")
        waited_on: str | None = None  # the owner we are waiting for
        since = time.monotonic()
        while True:
            made = self.http.request("MKCOL", lock, what, ok=(201, 405))
            if made.status_code == 201:
                break
            owner = self._lock_owner(what)
            if owner != waited_on:
                waited_on, since = owner, time.monotonic()
            elif time.monotonic() - since > LOCK_STALE_AFTER:
                self.http.request("DELETE", lock, "breaking a stale catalogue lock", ok=(200, 204, 404))
                continue
            time.sleep(random.uniform(0.02, 0.25))
        try:
            self.http.request("PUT", self._url(f"{LOCK_NAME}/owner"), what, body=token.encode())
            yield
        finally:
            if self._lock_owner("unlocking the catalogue") in (token, None):
                self.http.request("DELETE", lock, "unlocking the catalogue", ok=(200, 204, 404))

    def _lock_owner(self, what: str) -> str | None:
        response = self.http.request("GET", self._url(f"{LOCK_NAME}/owner"), what, ok=(200, 404))
        return response.text if response.status_code == 200 else None

    def close(self) -> None:
        self.http.close()

    def _put(self, relative: str, body: Body, what: str, progress: Progress | None = None) -> None:
        """PUT one file; on 409 (parent collection missing) create the collections with MKCOL and retry."""
        url = self._url(relative)
        response = self.http.request("PUT", url, what, body=body, ok=(200, 201, 204, 409), progress=progress)
        if response.status_code != 409:
            return
        parts = relative.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            self.http.request("MKCOL", self._url("/".join(parts[:depth]) + "/"), what, ok=(201, 405))
        self.http.request("PUT", url, what, body=body, progress=progress)
