"""The import checks' fork server. This file runs inside the runtime being verified, with the runtime's own
interpreter, as `python -I -c <this file's text> OUT_DIR WORKERS TIMEOUT SITE_PACKAGES`; it imports nothing
from runenv and only `gc`, `os`, `sys` and `time` from the stdlib, so the children start as clean as a fresh
`python -I -c "import MODULE"` (but for a note-taking finder first on sys.meta_path and an audit hook).

OUT_DIR/plan is a tree of modules, one per line as "DEPTH MODULE" in preorder: each top-level module, the
packages on the way to each extension module, and the extension modules. The server forks one child per node;
the child sends its stdout and stderr to OUT_DIR/MODULE.out|.err and returns from serve() to import its module at
the top level, so a failure is reported and exits as with `python -I -c "import MODULE"`. After a good import the
child waits for the threads Python would wait for and answers for itself. A leaf then leaves by os._exit (the
interpreter's teardown costs more than most imports). A node with children, while it runs no other thread,
serves them from its imported package (importing `a.b.c` imports `a` and `a.b` first anyway), so scipy's 114
extension modules cost one import of each scipy subpackage, not one per extension. A node that runs threads
after its import (forking then could deadlock) leaves, and its parent forks its children from its own cleaner
state; so it does for the children of a node that failed to import, so each reports its own error.

At most WORKERS processes import at once: each takes a token from a pipe before it is forked and gives it back
once imported (a parent gives it back for a child that died importing). A good import also leaves
OUT_DIR/MODULE.ok saying what it used (class Used). One line per module on stdout:
"MODULE EXIT_CODE" (negative: the signal that killed it) or "MODULE timeout". gc.freeze() keeps the children's
collections off the server's objects.
"""

from __future__ import annotations  # the annotations stay unevaluated: no typing import at run time

import gc
import os
import sys
import time

TYPE_CHECKING = False  # typing is not imported in the runtime; mypy treats this name as true
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import TypeAlias

    Node: TypeAlias = "tuple[str, list[Node]]"  # (module, children)


def _path(out: str, module: str, suffix: str) -> str:
    return os.path.join(out, module + suffix)


def _redirect(out: str, module: str) -> None:
    for fd, suffix in ((1, ".out"), (2, ".err")):
        file = os.open(_path(out, module, suffix), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(file, fd)
        os.close(file)


def _mark(out: str, module: str, suffix: str) -> None:
    os.close(os.open(_path(out, module, suffix), os.O_WRONLY | os.O_CREAT, 0o644))


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        threading = sys.modules.get("threading")
        return threading.active_count() if threading else 1


def _size(node: Node) -> int:
    return 1 + sum(_size(child) for child in node[1])


def _take(tokens: tuple[int, int]) -> bool:
    try:
        return bool(os.read(tokens[0], 1))
    except BlockingIOError:
        return False


class Server:
    """The settings every process of the tree shares."""

    def __init__(self, out: str, workers: int, timeout: float) -> None:
        self.out, self.workers, self.timeout = out, workers, timeout
        self.results = os.dup(1)
        self.tokens = os.pipe()
        os.set_blocking(self.tokens[0], False)
        os.write(self.tokens[1], b"x" * workers)
        self.baseline = _threads()  # an emulator runs threads of its own

    def answer(self, module: str, result: int | str) -> None:
        os.write(self.results, f"{module} {result}\n".encode())

    def imported(self, module: str) -> None:
        """In a child whose import worked: write what its import used to MODULE.ok (`Used.lines`), say so, and
        give the token back."""
        file = os.open(_path(self.out, module, ".ok"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(file, "\n".join(USED.lines()).encode("utf-8", "surrogateescape"))
        os.close(file)
        self.answer(module, 0)
        os.write(self.tokens[1], b"x")

    def serve(self, jobs: list[Node]) -> Node | None:
        """Import the nodes `jobs` [(module, children)] in forked children; returns the node in a child, None in
        the server when every node is done."""
        jobs = list(jobs)
        running: dict[int, tuple[Node, float]] = {}
        while jobs or running:
            while jobs and _take(self.tokens):
                node = jobs.pop(0)
                pid = os.fork()
                if pid == 0:
                    _redirect(self.out, node[0])
                    return node
                rounds = 1 + -(-(_size(node) - 1) // self.workers)
                running[pid] = node, time.monotonic() + self.timeout * rounds
            pid, status = os.waitpid(-1, os.WNOHANG) if running else (0, 0)
            result: int | str
            if pid:
                result = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            else:
                pid = next((p for p, (_, deadline) in running.items() if deadline < time.monotonic()), 0)
                if not pid:
                    time.sleep(0.005)
                    continue
                os.kill(pid, 9)  # SIGKILL
                os.waitpid(pid, 0)
                result = "timeout"
            (module, children), _ = running.pop(pid)
            if not os.path.exists(_path(self.out, module, ".ok")):
                self.answer(module, result)
                os.write(self.tokens[1], b"x")
                jobs.extend(children)
            elif not os.path.exists(_path(self.out, module, ".served")):
                jobs.extend(children)
            # else: the child served its children; those left unanswered fall back to fresh interpreters
        return None


class Used:
    """What the imports of this process used, beyond the modules they loaded: every top-level module name
    asked for (found or not, so that a distribution installed later is noticed), and the first path component
    under site-packages of every file or directory opened or listed and of every mapped shared library (a
    library loaded through RUNPATH, metadata read with importlib.metadata, data files)."""

    def __init__(self, site: str) -> None:
        self.site = site.rstrip("/") + "/"
        self.asked: set[str] = set()
        self.components: set[str] = set()

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if path is None:  # a top-level import; the finder itself finds nothing
            self.asked.add(name)

    def audit(self, event: str, args: tuple[object, ...]) -> None:
        if event in ("open", "os.listdir", "os.scandir") and args:
            self.touched(args[0])

    def touched(self, path: object) -> None:
        if isinstance(path, bytes):
            path = path.decode("utf-8", "surrogateescape")
        if isinstance(path, str) and path.startswith(self.site):
            first = path[len(self.site) :].split("/", 1)[0]
            if first:
                self.components.add(first)

    def lines(self) -> list[str]:
        """`module NAME` for each top-level module loaded or asked for, `site COMPONENT` for each path, and
        `unknown maps` when the shared libraries mapped could not be read."""
        try:
            with open("/proc/self/maps", encoding="utf-8", errors="surrogateescape") as maps:
                for line in maps:
                    fields = line.split(None, 5)
                    if len(fields) == 6:
                        self.touched(fields[5].strip())
            known = []
        except OSError:
            known = ["unknown maps"]
        names = self.asked | {name.partition(".")[0] for name in list(sys.modules)}
        return [*(f"module {n}" for n in sorted(names)), *(f"site {c}" for c in sorted(self.components)), *known]


USED = Used(sys.argv[4] if len(sys.argv) > 4 else "\0")


def _tree(lines: Iterable[str]) -> list[Node]:
    root: Node = ("", [])
    path = [root]
    for line in lines:
        depth, module = line.split()
        node: Node = (module, [])
        del path[int(depth) + 1 :]
        path[-1][1].append(node)
        path.append(node)
    return root[1]


def main() -> tuple[Server, Node | None]:
    server = Server(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
    with open(os.path.join(server.out, "plan"), encoding="utf-8") as plan:
        jobs = _tree(line for line in plan if line.strip())
    sys.meta_path.insert(0, USED)  # a finder that only takes note
    sys.addaudithook(USED.audit)
    gc.freeze()
    return server, server.serve(jobs)


if __name__ == "__main__":
    server, node = main()
    while node is not None:
        sys.argv[:] = ["-c", node[0]]
        import importlib

        importlib.import_module(node[0])
        threading = sys.modules.get("threading")
        if threading is not None:
            for thread in threading.enumerate():
                if not thread.daemon and thread is not threading.current_thread():
                    thread.join()
        server.imported(node[0])
        if not node[1] or _threads() > server.baseline:
            os._exit(0)
        _mark(server.out, node[0], ".served")
        node = server.serve(node[1])
    os._exit(0)
