"""Credentials for package indexes, applied to their artifact URLs as uv and pip do; never written anywhere.

uv resolves with the credentials in an index URL (config or environment) or a netrc file, but the
artifact URLs it locks carry none. Downloads look them up here: an index's `user:password` applies
to URLs on the same scheme, host and port (longest index path first), then netrc by host.
"""

from __future__ import annotations

import netrc
import os
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runenv.redact import register_basic

# The environment variables uv and pip read an index URL from; the `*_EXTRA_*` and UV_INDEX hold lists.
SINGLE_INDEX_VARS = ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL")
LIST_INDEX_VARS = ("UV_INDEX", "UV_EXTRA_INDEX_URL", "PIP_EXTRA_INDEX_URL")


def machine_index_urls(environ: dict[str, str] | None = None) -> list[str]:
    """The index URLs the machine's uv/pip environment names (`UV_INDEX` entries may be `name=url`)."""
    env = os.environ if environ is None else environ
    urls: list[str] = []
    for var in SINGLE_INDEX_VARS:
        if env.get(var, "").strip():
            urls.append(env[var].strip())
    for var in LIST_INDEX_VARS:
        for item in env.get(var, "").split():
            name, sep, url = item.partition("=")
            urls.append(url if sep and "://" not in name else item)
    return list(dict.fromkeys(urls))


@dataclass(frozen=True)
class _Entry:
    origin: tuple[str, str, int | None]  # scheme, host, port
    path: str
    user: str
    password: str


def _origin(parts: urllib.parse.SplitResult) -> tuple[str, str, int | None]:
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class IndexCredentials:
    """Who to be on which index: from the `user:password@` of index URLs, then netrc (`NETRC` or ~/.netrc)."""

    def __init__(self, index_urls: Iterable[str], netrc_file: Path | None = None) -> None:
        self._entries: list[_Entry] = []
        for url in index_urls:
            try:
                parts = urllib.parse.urlsplit(url)
            except ValueError:
                continue
            if parts.username is None or parts.scheme not in ("http", "https"):
                continue
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            register_basic(user, password)
            self._entries.append(_Entry(_origin(parts), parts.path.rstrip("/"), user, password))
        self._entries.sort(key=lambda e: len(e.path), reverse=True)
        self._netrc = _read_netrc(netrc_file)

    @classmethod
    def for_indexes(cls, registries: Iterable[str]) -> IndexCredentials:
        """The credentials of configured registries and of the machine's uv/pip index settings."""
        return cls([*registries, *machine_index_urls()])

    def auth_for(self, url: str) -> tuple[str, str] | None:
        """(user, password) to send with a GET of `url`, or None."""
        parts = urllib.parse.urlsplit(url)
        if parts.username is not None or parts.scheme not in ("http", "https"):
            return None  # a URL with its own userinfo speaks for itself
        origin = _origin(parts)
        same = [e for e in self._entries if e.origin == origin]
        for entry in same:
            if parts.path == entry.path or parts.path.startswith(entry.path + "/"):
                return entry.user, entry.password
        if same:  # artifacts often live beside the index (`/simple/` and `/files/`): the realm's credentials
            return same[0].user, same[0].password
        if self._netrc is not None:
            found = self._netrc.authenticators(origin[1])
            if found is not None:
                login, _account, password = found
                register_basic(login, password)
                return login, password or ""
        return None


def _read_netrc(path: Path | None) -> netrc.netrc | None:
    """The netrc file (`NETRC`, else ~/.netrc) when there is a readable one; a broken file is ignored, as uv does."""
    if path is None:
        path = Path(os.environ["NETRC"]) if os.environ.get("NETRC") else Path.home() / ".netrc"
    if not path.is_file():
        return None
    try:
        return netrc.netrc(str(path))
    except (OSError, netrc.NetrcParseError):
        return None
