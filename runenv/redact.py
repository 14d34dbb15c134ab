"""Keeping credentials out of what runenv prints and writes: the one place secrets are recognised and hidden.

Every credential runenv learns (from URLs, the environment or a netrc file) is registered here with the
forms it travels in (URL-encoded, and the base64 of `user:password` in a Basic header), and `redact`
hides all of them, plus any `user:password@` in a URL, from a text.
"""

from __future__ import annotations

import base64
import re
import threading
import urllib.parse

MASK = "***"
# Shorter values are not hunted for: hiding every "ab" (or a 4-digit PIN inside a sha256) would garble output.
MIN_SECRET = 6
_USERINFO = re.compile(r"(?<=://)[^/@\s\"'<>]+@")
_known: set[str] = set()
_guard = threading.Lock()


def _forms(value: str) -> set[str]:
    return {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}


def register_secret(value: str | None) -> None:
    """Remember a secret (password, token) so that `redact` hides it and its URL-encoded forms."""
    if value and len(value) >= MIN_SECRET:
        with _guard:
            _known.update(f for f in _forms(value) if len(f) >= MIN_SECRET)


def register_basic(user: str | None, password: str | None) -> None:
    """Remember Basic credentials: the password, and `user:password` as base64 (what an Authorization header holds)."""
    register_secret(password)
    if user is not None and (password or len(user) >= MIN_SECRET):
        pair = f"{user}:{password or ''}".encode()
        register_secret(base64.b64encode(pair).decode())
        register_secret(base64.urlsafe_b64encode(pair).decode())
        if not password:
            register_secret(user)  # a token given as the user name (`https://TOKEN@host/`)


def register_url(url: str) -> None:
    """Remember the credentials carried in a URL's `user:password@`."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        register_basic(user, password)


def redact(text: str) -> str:
    """`text` with every URL's `user:password@` shown as `***@` and every registered secret as `***`."""
    text = _USERINFO.sub(MASK + "@", text)
    with _guard:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def strip_userinfo(url: str) -> str:
    """`url` without `user:password@` (credentials travel in headers, never in URLs runenv records)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
