"""HTTP for publish targets: authenticated, retried, streamed from disk, errors without credentials."""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx

from runenv import retry
from runenv.cache import CHUNK
from runenv.errors import PublishError
from runenv.fetch import make_client
from runenv.publish.artifacts import LocalArtifact
from runenv.publish.targets.base import Credentials, Progress, RemoteFile, is_loopback
from runenv.redact import register_secret

Body = Path | bytes | None
AUTH_HINT = "set RUNENV_PUBLISH_USER and RUNENV_PUBLISH_PASSWORD, or RUNENV_PUBLISH_TOKEN"
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def _stream(path: Path, progress: Progress | None, digest: hashlib._Hash) -> Iterator[bytes]:
    """The file's bytes, each chunk hashed into `digest` as it is sent."""
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
            yield chunk
            if progress:
                progress(len(chunk))


class PublishClient:
    """One HTTP client per publish run; `request` raises PublishError naming what failed and where."""

    def __init__(self, creds: Credentials, timeout: float) -> None:
        self.creds = creds
        self.client = make_client(timeout)
        self.client.follow_redirects = False  # a redirected PUT must not silently lose its body
        self._bearer = creds.token
        self.sent: dict[Path, str] = {}  # sha256 of the bytes last sent from each file

    def check_sent(self, artifact: LocalArtifact) -> None:
        """The tarball's bytes that went out are the ones whose sha256 was checked and recorded."""
        sent = self.sent.get(artifact.tarball)
        if sent != artifact.sha256:
            raise PublishError(
                f"{artifact.filename} changed while it was being published: sent sha256 {sent}, "
                f"recorded {artifact.sha256}; it was taken back",
                hint="do not rebuild while publishing; publish again",
            )

    def close(self) -> None:
        self.client.close()

    def _auth_headers(self) -> dict[str, str]:
        if self._bearer:
            return {"Authorization": f"Bearer {self._bearer}"}
        if self.creds.user is not None:
            basic = httpx.BasicAuth(self.creds.user, self.creds.password or "")
            return {"Authorization": basic._auth_header}
        return {}

    def request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        body: Body = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
        progress: Progress | None = None,
    ) -> httpx.Response:
        """Send one request (retried while it fails transiently, runenv.retry); a status outside `ok` raises."""
        tried_token = False
        for attempt in retry.tries():
            try:
                response, digest = self._send(method, url, body, headers, progress)
                if response.status_code == 401 and not tried_token and self._fetch_token(response):
                    tried_token = True  # answered the challenge: the same attempt again, with the token
                    response, digest = self._send(method, url, body, headers, progress)
            except httpx.HTTPError as exc:
                if attempt < retry.ATTEMPTS and retry.transient(exc):
                    continue
                raise PublishError(
                    self.creds.scrub(
                        f"{what}: {method} {url} failed"
                        + (f" after {attempt} attempts" if attempt > 1 else "")
                        + f": {type(exc).__name__}"
                        + (f": {exc}" if str(exc) else "")
                    )
                ) from None
            if response.status_code in ok:
                if isinstance(body, Path):
                    self.sent[body] = digest
                return response
            if attempt < retry.ATTEMPTS and retry.transient_status(response.status_code):
                continue
            raise self.status_error(response, what)
        raise AssertionError("unreachable")

    def _send(
        self, method: str, url: str, body: Body, headers: dict[str, str] | None, progress: Progress | None
    ) -> tuple[httpx.Response, str]:
        """One request with the current credentials, and the sha256 of the bytes sent from a file body."""
        all_headers = {**(headers or {}), **self._auth_headers()}
        digest = hashlib.sha256()
        content: bytes | Iterator[bytes] | None = (
            body if not isinstance(body, Path) else _stream(body, progress, digest)
        )
        if isinstance(body, Path):
            all_headers["Content-Length"] = str(body.stat().st_size)
        response = self.client.request(method, url, content=content, headers=all_headers)
        return response, digest.hexdigest()

    def status_error(self, response: httpx.Response, what: str) -> PublishError:
        """The error for an unexpected status, naming the request and, for 401/403, the credentials."""
        req = response.request
        where = self.creds.scrub(f"{req.method} {req.url}")
        status = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        if response.status_code == 401:
            given = "rejected the credentials" if (self.creds.user or self.creds.token) else "requires credentials"
            return PublishError(f"{what}: the server {given} ({status} on {where})", hint=AUTH_HINT)
        if response.status_code == 403:
            return PublishError(f"{what}: permission denied ({status} on {where})", hint=AUTH_HINT)
        detail = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        return PublishError(self.creds.scrub(f"{what}: {status} on {where}" + (f": {detail}" if detail else "")))

    def _fetch_token(self, response: httpx.Response) -> bool:
        """Answer a registry's `Bearer realm=…` challenge with a token (basic credentials if any)."""
        challenge = response.headers.get("WWW-Authenticate", "")
        if not challenge.lower().startswith("bearer "):
            return False
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop("realm", None)
        if not realm:
            return False
        # Basic credentials go only to a realm on the registry's own host, and never over plain HTTP off loopback.
        realm_parts = urllib.parse.urlsplit(realm)
        same_host = realm_parts.hostname == response.request.url.host
        plain = realm_parts.scheme != "https" and not is_loopback(realm_parts.hostname)
        user = self.creds.user if same_host and not plain else None
        auth = httpx.BasicAuth(user, self.creds.password or "") if user else None
        try:
            answer = self.client.get(realm, params=params, auth=auth)
        except httpx.HTTPError:
            return False
        if answer.status_code != 200:
            return False
        try:
            data = answer.json()
        except ValueError:
            return False
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            return False
        register_secret(token)
        self._bearer = token
        return True

    def hash_remote(self, url: str, what: str) -> RemoteFile:
        """GET `url` streamed and hash it: size and sha256 of what the server really serves."""
        digest = hashlib.sha256()
        size = 0
        try:
            with self.client.stream("GET", url, headers=self._auth_headers(), follow_redirects=True) as response:
                if response.status_code != 200:
                    response.read()
                    raise self.status_error(response, what)
                for chunk in response.iter_bytes(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except httpx.HTTPError as exc:
            raise PublishError(self.creds.scrub(f"{what}: GET {url} failed: {type(exc).__name__}")) from None
        return RemoteFile(size, digest.hexdigest())
