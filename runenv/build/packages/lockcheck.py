"""Checking a lock's entries before anything acts on them: a lock is committed, shared, and untrusted input.

A bad entry is a config error (exit 2) naming the lock file and the package, raised before any
download or write: file names must be plain wheel/sdist names of that package and version (they
become paths), URLs must be http(s) (or `file:` below a configured `file:` index), hashes 64 hex.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from runenv.errors import ConfigError

HEX64 = re.compile(r"[0-9a-fA-F]{64}")
HEX40 = re.compile(r"[0-9a-fA-F]{40}")
NAME = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")
WEB_SCHEMES = ("http", "https")
VCS_SCHEMES = ("git+https", "git+http", "git+file", "https", "http", "file")
HINT = "re-run `runenv lock` (or restore the lock from version control)"


def file_roots(index_urls: Iterable[str]) -> tuple[str, ...]:
    """Directories `file:` artifacts may come from: the directory holding each `file:` index
    (e.g. `…/simple`'s parent)."""
    roots = []
    for url in index_urls:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "file":
            path = posixpath.normpath(urllib.parse.unquote(parts.path))
            roots.append(posixpath.dirname(path.rstrip("/")) or "/")
    return tuple(roots)


def check_locked_package(
    package: Any, lock_path: Path, allowed_file_roots: tuple[str, ...] = (), position: int = 0
) -> None:
    """Refuse a LockedPackage whose name, version, URL, hash or file name is not what a resolver writes."""
    where = f"{lock_path}: packages[{position}] ({package.name!r})"

    def bad(what: str) -> ConfigError:
        return ConfigError(f"{where}: {what}", hint=HINT)

    if not isinstance(package.name, str) or not NAME.fullmatch(package.name):
        raise bad("not a normalised distribution name")
    try:
        version = Version(str(package.version))
    except InvalidVersion:
        raise bad(f"version {package.version!r} is not a valid version") from None
    for dependency in package.dependencies:
        if not isinstance(dependency, str) or not NAME.fullmatch(canonicalize_name(dependency)):
            raise bad(f"dependency {dependency!r} is not a distribution name")
    parts = _split(str(package.url), bad)
    if package.kind == "vcs":  # checked loosely: the commit pins the content
        if parts.scheme not in VCS_SCHEMES:
            raise bad(f"VCS URL scheme {parts.scheme!r} is not one of {', '.join(VCS_SCHEMES)}")
        pin = getattr(package, "vcs", None)
        commit = getattr(pin, "commit", None)
        if commit is not None and not HEX40.fullmatch(str(commit)):
            raise bad(f"commit {commit!r} is not 40 hex digits")
        return
    if not isinstance(package.sha256, str) or not HEX64.fullmatch(package.sha256):
        raise bad(f"sha256 {package.sha256!r} is not 64 hex digits")
    _check_url(parts, allowed_file_roots, bad)
    _check_filename(package.filename, package.kind, package.name, version, bad)


def _split(url: str, bad: Any) -> urllib.parse.SplitResult:
    if any(c in url for c in "\0\r\n\t "):
        raise bad("URL contains whitespace or control characters")
    try:
        return urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise bad(f"malformed URL ({exc})") from None


def _check_url(parts: urllib.parse.SplitResult, roots: tuple[str, ...], bad: Any) -> None:
    if parts.scheme in WEB_SCHEMES:
        if not parts.hostname:
            raise bad("URL names no host")
        return
    if parts.scheme == "file":
        path = urllib.parse.unquote(parts.path)
        normal = posixpath.normpath(path)
        if ".." not in path.split("/") and any(normal == r or normal.startswith(r.rstrip("/") + "/") for r in roots):
            return
        raise bad("file: URL outside every configured file: index")
    raise bad(f"URL scheme {parts.scheme or '(none)'!r} is not http or https")


def _check_filename(filename: str, kind: str, name: str, version: Version, bad: Any) -> None:
    if not filename or filename.startswith(".") or any(c in filename for c in "/\\\0:"):
        raise bad(f"file name {filename!r} is not a plain file name")
    try:
        if kind == "wheel":
            if not filename.endswith(".whl"):
                raise InvalidWheelFilename(filename)
            found, found_version = parse_wheel_filename(filename)[:2]
        elif kind == "sdist":
            found, found_version = parse_sdist_filename(filename)
        else:
            raise bad(f"artifact kind {kind!r} is not wheel or sdist")
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        raise bad(f"file name {filename!r} is not a valid {kind} name") from None
    if canonicalize_name(found) != name or found_version != version:
        raise bad(f"file name {filename!r} is not {name} {version}")
