"""One retry policy for downloads and publishing (runenv/retry.py)."""

from __future__ import annotations

import itertools

import httpx
import pytest

from runenv import retry


def _status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "https://example.invalid/x")
    return httpx.HTTPStatusError("", request=request, response=httpx.Response(status, request=request))


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_rate_limits_and_server_failures_are_transient(status):
    assert retry.transient_status(status) and retry.transient(_status_error(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412, 501, 505])
def test_client_errors_and_permanent_server_answers_are_not(status):
    assert not retry.transient_status(status) and not retry.transient(_status_error(status))


def test_dropped_connections_are_transient_other_errors_are_not():
    assert retry.transient(httpx.ConnectError("refused"))
    assert retry.transient(httpx.ReadTimeout("slow"))
    assert retry.transient(httpx.StreamClosed())
    assert not retry.transient(httpx.DecodingError("garbled"))
    assert not retry.transient(ValueError("not HTTP"))


def test_delays_double_up_to_the_cap():
    assert list(itertools.islice(retry.delays(0.5), 4)) == [0.5, 1.0, 2.0, 4.0]
    assert list(itertools.islice(retry.delays(0.05, cap=0.2), 5)) == [0.05, 0.1, 0.2, 0.2, 0.2]


def test_jittered_delays_stay_below_the_schedule():
    bounds = itertools.islice(retry.delays(0.05, cap=2.0), 200)
    waits = itertools.islice(retry.delays(0.05, cap=2.0, jitter=True), 200)
    assert all(0 <= wait <= bound for wait, bound in zip(waits, bounds))


def test_tries_counts_attempts_and_sleeps_only_between_them(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", slept.append)
    assert list(retry.tries(4)) == [1, 2, 3, 4]
    assert slept == [0.5, 1.0, 2.0]
    slept.clear()
    assert list(retry.contended(3)) == [1, 2, 3] and len(slept) == 2 and all(s <= 0.1 for s in slept)
