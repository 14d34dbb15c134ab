"""What every publish target offers: the protocol, remote file facts, credentials and the remote layout."""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from runenv import settings
from runenv.errors import UsageError
from runenv.publish.artifacts import LocalArtifact
from runenv.publish.catalogue import Catalogue, Entries
from runenv.redact import redact, register_basic, register_secret

Progress = Callable[[int], None]  # called with the number of bytes just sent


@dataclass(frozen=True)
class RemoteFile:
    """What a target holds under an artifact's name."""

    size: int
    sha256: str


def artifact_dir(artifact: LocalArtifact) -> str:
    """`<runtime>/<platform>`: where directory, HTTP and S3 targets keep an artifact's files."""
    return f"{artifact.runtime}/{artifact.platform}"


def file_location(artifact: LocalArtifact) -> dict[str, str]:
    """The catalogue's `file` of an artifact kept under `artifact_dir` (directory, HTTP and S3 targets)."""
    return {"file": f"{artifact_dir(artifact)}/{artifact.filename}"}


class Target(Protocol):
    """A place artifacts are published to: directory, HTTP/WebDAV store or OCI registry."""

    display: str  # the target URL without credentials

    def lookup(self, artifact: LocalArtifact) -> RemoteFile | None:
        """The remote tarball published under the artifact's name, or None."""

    def upload(self, artifact: LocalArtifact, progress: Progress) -> RemoteFile:
        """Upload the tarball and its sidecars (streamed from disk); return what the target now holds."""

    def location(self, artifact: LocalArtifact) -> dict[str, str]:
        """Catalogue fields saying where the artifact lives on this target."""

    def read_catalogue(self) -> Catalogue | None:
        """The target's catalogue, or None when it has none yet."""

    def write_catalogue(self, catalogue: Catalogue) -> None:
        """Replace the catalogue (atomically where the target allows it)."""

    def add_to_catalogue(self, entries: Entries) -> None:
        """Add `entries` to the catalogue without losing what concurrent publishers add (lock or conditional write)."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class Credentials:
    """Publish credentials from the environment (or the URL); never printed."""

    user: str | None = None
    password: str | None = None
    token: str | None = None

    def __post_init__(self) -> None:
        register_basic(self.user, self.password)
        register_secret(self.token)

    @property
    def given(self) -> bool:
        return bool(self.user or self.token)

    @classmethod
    def from_env(cls, url: str) -> Credentials:
        parts = urllib.parse.urlsplit(url)
        given = settings.current()
        user = given.publish_user or urllib.parse.unquote(parts.username or "") or None
        password = given.publish_password or urllib.parse.unquote(parts.password or "") or None
        return cls(user, password, given.publish_token or None)

    def scrub(self, text: str) -> str:
        """`text` with credentials in URLs and every secret, in every encoding it travels in, replaced by ***."""
        return redact(text)


def is_loopback(host: str | None) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_plain_http(url: str, creds: Credentials) -> None:
    """Credentials never travel over plain HTTP to a host that is not loopback."""
    parts = urllib.parse.urlsplit(url)
    if creds.given and parts.scheme == "http" and not is_loopback(parts.hostname):
        raise UsageError(
            f"refusing to send publish credentials over plain HTTP to {parts.hostname}",
            hint="use https:// (or a loopback address), or publish without credentials",
        )
