"""A static file server on loopback with a request log and injectable faults, for mirrors and indexes."""

from __future__ import annotations

import fnmatch
import http.server
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path


@dataclass
class Fault:
    pattern: str  # fnmatch pattern on the request path
    status: int | None  # HTTP status to answer, or None to drop the connection mid-body
    times: int  # how many requests it hits


@dataclass
class ServerState:
    requests: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            self.requests.append(path)
            for fault in self.faults:
                if fault.times > 0 and fnmatch.fnmatch(path, fault.pattern):
                    fault.times -= 1
                    return fault
        return None


class _Handler(http.server.SimpleHTTPRequestHandler):
    state: ServerState

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        fault = self.state.take_fault(self.path)
        if fault is None:
            return super().do_GET()
        if fault.status is not None:
            self.send_error(fault.status)
            return
        # Dropped connection: promise a body, send part of it, close.
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.write(b"\0" * 1000)
        self.wfile.flush()
        self.close_connection = True

    def do_HEAD(self) -> None:  # noqa: N802
        self.state.take_fault(self.path)
        return super().do_HEAD()


class StaticServer:
    """Serves `root` at `http://127.0.0.1:<port>/`; use as a context manager."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.state = ServerState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(self.root)))
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def requests(self) -> list[str]:
        return list(self.state.requests)

    def fail(self, pattern: str, status: int | None = 503, times: int = 1) -> None:
        """Answer the next `times` requests matching `pattern` with `status` (None: drop mid-body)."""
        self.state.faults.append(Fault(pattern, status, times))

    def count(self, pattern: str) -> int:
        return sum(1 for p in self.requests if fnmatch.fnmatch(p, pattern))

    def start(self) -> StaticServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> StaticServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
