"""moto's S3 server with each request handled atomically, as S3 handles a conditional write.

moto checks `If-Match` / `If-None-Match` and then stores the object as two steps, and its server is
threaded, so two concurrent conditional writes can both pass the check: a lost update S3 itself never
allows. Publishers are tested against the store's promise, so requests here take turns (one lock
around moto's WSGI application); connections stay concurrent.

Usage: python moto_atomic.py HOST PORT
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def atomic(app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
    """A WSGI application that runs `app` for one request at a time, its whole answer included."""
    turn = threading.Lock()

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with turn:
            return list(app(environ, start_response))

    return serve


def main(host: str, port: str) -> None:
    run_simple(host, int(port), atomic(DomainDispatcherApplication(create_backend_app)), threaded=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
