"""Downloads into the content-addressed cache (runenv/fetch.py, runenv/cache.py)."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from runenv.cache import Cache
from runenv.errors import FetchError, IntegrityError
from runenv.fetch import Download, fetch_all
from runenv.redact import redact
from tests.helpers.http import StaticServer


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    blobs = {}
    for i in range(6):
        data = f"artifact {i}\n".encode() * (1000 + i)
        (root / f"a{i}.bin").write_bytes(data)
        blobs[f"a{i}.bin"] = hashlib.sha256(data).hexdigest()
    with StaticServer(root) as server:
        yield server, blobs


def items(server, blobs):
    return [Download(f"{server.url}/{name}", sha) for name, sha in blobs.items()]


def test_parallel_fetch_caches_each_once(served, tmp_path):
    server, blobs = served
    cache = Cache(tmp_path / "cache")
    got = fetch_all(items(server, blobs) + items(server, blobs), cache)
    assert set(got) == set(blobs.values())
    for sha, path in got.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert server.count("/a*.bin") == len(blobs)
    fetch_all(items(server, blobs), cache)
    assert server.count("/a*.bin") == len(blobs), "second fetch must come from the cache"


def test_each_blob_is_announced_once_as_it_lands(served, tmp_path):
    """`on_done` lets the build install a wheel while the others still download."""
    server, blobs = served
    cache = Cache(tmp_path / "cache")
    first = list(blobs.values())[0]
    fetch_all([i for i in items(server, blobs) if i.sha256 == first], cache)  # one already cached
    heard: list[tuple[str, bytes]] = []
    got = fetch_all(
        items(server, blobs) + items(server, blobs),
        cache,
        on_done=lambda sha, path: heard.append((sha, path.read_bytes())),
    )
    assert sorted(sha for sha, _ in heard) == sorted(got) == sorted(blobs.values())
    assert heard[0][0] == first  # cached blobs come first
    assert all(hashlib.sha256(data).hexdigest() == sha for sha, data in heard)


def test_a_stopped_fetch_starts_no_more_downloads(served, tmp_path):
    """A failed build sets `stop`, so its error is not kept waiting for downloads nobody needs."""
    server, blobs = served
    cache = Cache(tmp_path / "cache")
    stop = threading.Event()
    stop.set()
    with pytest.raises(FetchError, match="download cancelled"):
        fetch_all(items(server, blobs), cache, stop=stop)
    assert server.count("/a*.bin") == 0 and not any(cache.has(sha) for sha in blobs.values())


def test_threads_sharing_a_cache_fetch_each_blob_once(served, tmp_path):
    server, blobs = served
    cache = Cache(tmp_path / "cache")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: fetch_all(items(server, blobs), cache), range(4)))
    assert all(set(r) == set(blobs.values()) for r in results)
    assert server.count("/a*.bin") == len(blobs)


def test_retries_5xx_and_dropped_connections(served, tmp_path):
    server, blobs = served
    server.fail("/a0.bin", 503, times=2)
    server.fail("/a1.bin", None, times=1)
    got = fetch_all(items(server, blobs), Cache(tmp_path / "cache"))
    assert len(got) == len(blobs)
    assert server.count("/a0.bin") == 3 and server.count("/a1.bin") == 2


def test_hash_mismatch_caches_nothing(served, tmp_path):
    server, blobs = served
    cache = Cache(tmp_path / "cache")
    bad = Download(f"{server.url}/a0.bin", "0" * 64)
    with pytest.raises(IntegrityError, match="sha256 mismatch for a0.bin"):
        fetch_all([bad], cache)
    assert not any((cache.root / "sha256").glob("*")) if (cache.root / "sha256").exists() else True
    assert not any((cache.root / "tmp").iterdir())


def test_404_is_not_retried_and_names_url(served, tmp_path):
    server, _ = served
    with pytest.raises(FetchError, match=r"missing.bin .*HTTP 404"):
        fetch_all([Download(f"{server.url}/missing.bin", "1" * 64)], Cache(tmp_path / "c"))
    assert server.count("/missing.bin") == 1


def test_offline_names_what_is_missing(served, tmp_path):
    server, blobs = served
    with pytest.raises(FetchError, match="offline and not in the cache: a0.bin"):
        fetch_all(items(server, blobs)[:1], Cache(tmp_path / "c"), offline=True)
    assert server.requests == []


def test_unreachable_host(tmp_path):
    with pytest.raises(FetchError, match="cannot download x.bin from http://127.0.0.1:9/x.bin"):
        fetch_all([Download("http://127.0.0.1:9/x.bin", "2" * 64)], Cache(tmp_path / "c"), timeout=5)


def test_credentials_are_redacted():
    assert redact("https://user:s3cret@idx.example/simple/") == "https://***@idx.example/simple/"
    assert "s3cret" not in redact("https://token@idx.example/x")
