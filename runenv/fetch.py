"""Downloads into the content-addressed cache: parallel, retried, verified before use."""

from __future__ import annotations

import dataclasses
import threading
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import httpx

from runenv import progress, retry
from runenv.cache import Cache
from runenv.errors import FetchError
from runenv.redact import redact

MAX_PARALLEL = 8
T = TypeVar("T")
AuthFor = Callable[[str], "tuple[str, str] | None"]  # URL → (user, password) to send, e.g. IndexCredentials.auth_for


def no_auth(_url: str) -> tuple[str, str] | None:
    return None


class StopFlag(Protocol):
    """Something that says when to give up (a threading.Event, or several of them)."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class AnyOf:
    """A stop flag set when any of its events is."""

    events: tuple[threading.Event, ...]

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)


@dataclass(frozen=True)
class Download:
    """One artifact to fetch: where from, and the sha256 it must have."""

    url: str
    sha256: str
    name: str = ""  # what to call it in messages (file name by default)

    @property
    def label(self) -> str:
        return self.name or urllib.parse.urlsplit(self.url).path.rsplit("/", 1)[-1] or redact(self.url)


def make_client(timeout: float) -> httpx.Client:
    """An HTTP client honouring the machine's proxy settings; one per operation, shared by threads."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
        follow_redirects=True,
        limits=httpx.Limits(max_connections=MAX_PARALLEL * 2, max_keepalive_connections=MAX_PARALLEL),
        headers={"User-Agent": "runenv"},
    )


def _local_path(url: str) -> Path | None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return Path(urllib.parse.unquote(parts.path))
    return None


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")


def fetch_one(
    client: httpx.Client,
    item: Download,
    cache: Cache,
    *,
    retries: int = retry.ATTEMPTS,
    stop: StopFlag | None = None,
    auth_for: AuthFor = no_auth,
    meter: progress.Phase | None = None,
) -> Path:
    """Download `item` into the cache (unless present) and return its cache path; once `stop` is set, a download
    under way ends at its next chunk (leaving nothing in the cache). `meter` counts the bytes received."""
    with cache.claim(item.sha256):
        if cache.has(item.sha256):
            return cache.path(item.sha256)
        return _download(client, item, cache, retries, stop, auth_for, meter or progress.current_phase())


def _retrying(request: Callable[[], T], what: str, retries: int = retry.ATTEMPTS) -> T:
    """`request()`, retried with backoff while it fails transiently (runenv.retry); other HTTP errors fail at once."""
    for attempt in retry.tries(retries):
        try:
            return request()
        except (httpx.HTTPError, httpx.StreamError) as exc:
            if attempt == retries or not retry.transient(exc):
                raise FetchError(
                    f"cannot download {what}: {_describe(exc)}"
                    + (f" (after {attempt} attempts)" if attempt > 1 else ""),
                    status=exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None,
                ) from None
    raise AssertionError("unreachable")


def _download(
    client: httpx.Client,
    item: Download,
    cache: Cache,
    retries: int,
    stop: StopFlag | None,
    auth_for: AuthFor,
    meter: progress.Phase,
) -> Path:
    local = _local_path(item.url)
    if local is not None:
        if not local.is_file():
            raise FetchError(f"{item.label}: {local} does not exist")
        return cache.add_file(local, item.sha256)

    # httpx drops the Authorization header when a redirect leaves the origin.
    auth = auth_for(item.url)

    def attempt() -> Path:
        with client.stream("GET", item.url, auth=auth) as response:
            response.raise_for_status()
            size = int(response.headers.get("content-length", "0") or 0)
            meter.expect(size)
            received = 0
            try:
                with cache.writer(item.sha256, f"{item.label} from {redact(item.url)}") as out:
                    for chunk in response.iter_bytes():  # as it arrives, so that `stop` is seen on a slow link too
                        if stop is not None and stop.is_set():
                            raise FetchError(f"{item.label}: download cancelled")
                        out.write(chunk)
                        received += len(chunk)
                        meter.advance(len(chunk))
            finally:
                meter.expect(received - size)  # the total follows what arrived (a retry starts over)
        progress.log(f"downloaded {item.label} ({received} bytes) from {redact(item.url)}", progress.DEBUG)
        return cache.path(item.sha256)

    return _retrying(attempt, f"{item.label} from {redact(item.url)}", retries)


def fetch_text(client: httpx.Client, url: str, cache: Cache, *, offline: bool = False) -> str:
    """A small document with no pinned hash (e.g. SHA256SUMS); cached by URL for offline use."""
    if offline:
        sha = cache.recall(url)
        if sha is None:
            raise FetchError(f"offline and {redact(url)} is not in the cache", hint="run once without --offline")
        return cache.path(sha).read_text(encoding="utf-8")
    local = _local_path(url)
    if local is not None:
        try:
            return local.read_text(encoding="utf-8")
        except OSError as exc:
            raise FetchError(f"cannot read {local}: {exc}") from None

    def get() -> httpx.Response:
        response = client.get(url)
        response.raise_for_status()
        return response

    response = _retrying(get, redact(url))
    with cache.writer(None, redact(url)) as out:
        out.write(response.content)
    cache.remember(url, out.sha256)  # type: ignore[attr-defined]
    return response.text


def fetch_all(
    items: list[Download],
    cache: Cache,
    *,
    timeout: float = 300,
    parallel: bool = True,
    offline: bool = False,
    on_done: Callable[[str, Path], None] = lambda _sha, _path: None,
    stop: StopFlag | None = None,
    auth_for: AuthFor = no_auth,
) -> dict[str, Path]:
    """Fetch every item (each sha256 once) and return {sha256: cache path}; `on_done(sha256, path)` hears of each
    as soon as it is in the cache (cached ones first). Once `stop` is set, downloads not yet started are dropped
    and those under way end at their next chunk. `auth_for(url)` gives the credentials to send with each
    download (index credentials), if any.

    Offline, only the cache is used and every missing artifact is named in one error.
    On failure the other downloads still finish (they are valid cache entries) and the first error is raised.
    """
    unique = list({item.sha256: item for item in items}.values())
    done: dict[str, Path] = {}
    missing = []
    for item in unique:
        if cache.has(item.sha256):
            progress.log(f"cache hit: {item.label}")
            done[item.sha256] = cache.path(item.sha256)
            on_done(item.sha256, done[item.sha256])
        else:
            missing.append(item)
    if not missing:
        return done
    if offline:
        names = ", ".join(i.label for i in missing)
        raise FetchError(f"offline and not in the cache: {names}", hint="run once without --offline")
    errors: list[Exception] = []
    meter = progress.current_phase()  # the pool's threads count bytes for the phase that asked
    with make_client(timeout) as client, ThreadPoolExecutor(MAX_PARALLEL if parallel else 1) as pool:

        def fetch(item: Download) -> Path:
            if stop is not None and stop.is_set():
                raise FetchError(f"{item.label}: download cancelled")
            return fetch_one(client, item, cache, stop=stop, auth_for=auth_for, meter=meter)

        futures = {pool.submit(progress.carry(fetch), item): item for item in missing}
        for future in as_completed(futures):
            item = futures[future]
            try:
                done[item.sha256] = future.result()
                on_done(item.sha256, done[item.sha256])
            except Exception as exc:  # collected; the first is raised after the rest finish
                errors.append(exc)
    if errors:
        raise errors[0]
    return done


@dataclass(frozen=True)
class Downloader:
    """How one operation downloads: into which cache, with what timeout, offline or not, in parallel or not,
    and when to give up. What the stages take instead of those settings one by one."""

    cache: Cache
    timeout: float = 300
    offline: bool = False
    parallel: bool = True
    stop: StopFlag | None = None

    def fetch(
        self,
        items: list[Download],
        *,
        on_done: Callable[[str, Path], None] = lambda _sha, _path: None,
        auth_for: AuthFor = no_auth,
    ) -> dict[str, Path]:
        """`fetch_all` with these settings."""
        return fetch_all(
            items,
            self.cache,
            timeout=self.timeout,
            parallel=self.parallel,
            offline=self.offline,
            on_done=on_done,
            stop=self.stop,
            auth_for=auth_for,
        )

    def text(self, url: str) -> str:
        """`fetch_text` with these settings."""
        with make_client(self.timeout) as client:
            return fetch_text(client, url, self.cache, offline=self.offline)

    def stopping(self, stop: StopFlag | None) -> Downloader:
        """The same settings, giving up once `stop` is set."""
        return dataclasses.replace(self, stop=stop)
