"""When a failed HTTP request is tried again, and how long to wait: one policy for downloads and publishing."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator

import httpx

ATTEMPTS = 4
FIRST_DELAY = 0.5  # seconds, doubled after each failed attempt
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def transient_status(status: int) -> bool:
    """A status worth another try: rate limited, or the server (or a proxy before it) failing for now."""
    return status in TRANSIENT_STATUSES


def transient(exc: BaseException) -> bool:
    """A transient status, or the connection failing (refused, reset, timed out, dropped mid-body)."""
    if isinstance(exc, httpx.HTTPStatusError):
        return transient_status(exc.response.status_code)
    return isinstance(exc, (httpx.TransportError, httpx.StreamError))


def delays(first: float = FIRST_DELAY, cap: float = math.inf, *, jitter: bool = False) -> Iterator[float]:
    """The waits between tries, without end: doubling from `first` up to `cap`; with `jitter` each is drawn
    uniformly below that (full jitter, so that writers contending for one object spread out)."""
    delay = first
    while True:
        yield random.uniform(0, delay) if jitter else delay
        delay = min(cap, delay * 2)


def tries(
    attempts: int = ATTEMPTS, first: float = FIRST_DELAY, cap: float = math.inf, *, jitter: bool = False
) -> Iterator[int]:
    """The attempt numbers 1 … `attempts`, sleeping the `delays` schedule before each one after the first."""
    waits = delays(first, cap, jitter=jitter)
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            time.sleep(next(waits))
        yield attempt


def contended(attempts: int) -> Iterator[int]:
    """`tries` for writers racing over one object (a catalogue, a shared blob): short, capped, jittered waits."""
    return tries(attempts, first=0.05, cap=2.0, jitter=True)
