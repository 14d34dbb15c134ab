"""The registry of publish targets by URL scheme, and choosing the target URL."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runenv.errors import UsageError
from runenv.publish.targets.base import Credentials, Target
from runenv.publish.targets.directory import DirectoryTarget
from runenv.publish.targets.oci import OciTarget
from runenv.publish.targets.s3 import S3Target
from runenv.publish.targets.webdav import WebDavTarget
from runenv.redact import redact


@dataclass(frozen=True)
class TargetOptions:
    """How to reach a target, whatever its kind."""

    timeout: float
    insecure: bool = False  # OCI: plain HTTP to a registry that is not loopback
    s3_endpoint: str | None = None


Opener = Callable[[str, TargetOptions], Target]


def _file(url: str, options: TargetOptions) -> Target:
    return DirectoryTarget(Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)))


def _webdav(url: str, options: TargetOptions) -> Target:
    return WebDavTarget(url, Credentials.from_env(url), timeout=options.timeout)


def _oci(url: str, options: TargetOptions) -> Target:
    return OciTarget(url, Credentials.from_env(url), timeout=options.timeout, insecure=options.insecure)


def _s3(url: str, options: TargetOptions) -> Target:
    return S3Target(url, timeout=options.timeout, endpoint=options.s3_endpoint)


TARGETS: dict[str, Opener] = {"file": _file, "http": _webdav, "https": _webdav, "oci": _oci, "s3": _s3}


def open_target(url: str, *, timeout: float, insecure: bool = False, s3_endpoint: str | None = None) -> Target:
    """The target a URL names: `oci://`, `http(s)://`, `s3://`, `file://` or a plain directory path."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if len(scheme) <= 1:  # no scheme, or one letter: a Windows drive
        return DirectoryTarget(Path(url).expanduser())
    opener = TARGETS.get(scheme)
    if opener is None:
        raise UsageError(
            f"unsupported publish target {redact(url)!r}",
            hint="use a directory, file://, http(s)://, s3://bucket/prefix or oci://host[:port]/repository",
        )
    return opener(url, TargetOptions(timeout, insecure, s3_endpoint))


def choose_target(flag: str | None, environment: str | None, configured: str | None, root: Path) -> str | None:
    """`--to` beats RUNENV_PUBLISH_TARGET beats `publish.target`; a relative configured path is the workspace's."""
    if flag or environment:
        return flag or environment
    if not configured:
        return None
    scheme = urllib.parse.urlsplit(configured).scheme
    if (not scheme or len(scheme) == 1) and not Path(configured).expanduser().is_absolute():
        return str(root / configured)
    return configured
