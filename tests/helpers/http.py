"""A static file server on loopback with a request log and injectable faults, for mirrors and indexes."""

from __future__ import annotations

import base64
import fnmatch
import http.server
import sys
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

TRICKLE = 16 << 10  # bytes per write of a slow transfer
TRICKLE_PAUSE = 0.05  # seconds between them: a few hundred KiB/s


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
    slow: list[str] = field(default_factory=list)  # fnmatch patterns of paths served a trickle at a time
    fast: threading.Event = field(default_factory=threading.Event)  # set: slow transfers under way finish at once
    authorization: str | None = None  # the Authorization header every request must carry
    refused: list[str] = field(default_factory=list)  # paths answered 401

    def is_slow(self, path: str) -> bool:
        with self.lock:
            return any(fnmatch.fnmatch(path, pattern) for pattern in self.slow)

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

    def _authorized(self) -> bool:
        wanted = self.state.authorization
        if wanted is None or self.headers.get("Authorization") == wanted:
            return True
        with self.state.lock:
            self.state.refused.append(self.path)
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="test"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_GET(self) -> None:  # noqa: N802
        if not self._authorized():
            return
        fault = self.state.take_fault(self.path)
        if fault is None and self.state.is_slow(self.path):
            return self._trickle()
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

    def _trickle(self) -> None:
        """The file a few KiB at a time with pauses, so a client is caught mid-download (until `fast` is set)."""
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            for start in range(0, len(data), TRICKLE):
                self.wfile.write(data[start : start + TRICKLE])
                self.wfile.flush()
                self.state.fast.wait(TRICKLE_PAUSE)
        except OSError:  # the client went away (killed): nothing more to send
            self.close_connection = True

    def do_HEAD(self) -> None:  # noqa: N802
        if not self._authorized():
            return
        self.state.take_fault(self.path)
        return super().do_HEAD()


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        """A client that hangs up mid-body (a build stopped, a full disk) is no server error; others are printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class StaticServer:
    """Serves `root` at `http://127.0.0.1:<port>/`; use as a context manager.

    With `basic_auth=(user, password)` every request without exactly those Basic credentials gets HTTP 401.
    """

    def __init__(self, root: Path, basic_auth: tuple[str, str] | None = None) -> None:
        self.root = Path(root)
        self.state = ServerState()
        if basic_auth is not None:
            token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
            self.state.authorization = f"Basic {token}"
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._httpd = _Server(("127.0.0.1", 0), partial(handler, directory=str(self.root)))
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

    def trickle(self, pattern: str) -> None:
        """Serve paths matching `pattern` slowly, a few KiB at a time, until `hurry()`."""
        self.state.slow.append(pattern)

    def hurry(self) -> None:
        """Serve everything at full speed again, also the slow transfers under way."""
        with self.state.lock:
            self.state.slow.clear()
        self.state.fast.set()

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
