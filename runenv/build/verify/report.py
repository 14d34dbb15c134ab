"""What verification found: one failure per problem, and the report of every check kind that ran."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from runenv.errors import BuildError

Check = Literal["imports", "emulatedImports", "static", "closure"]
CHECKS: tuple[Check, ...] = ("imports", "emulatedImports", "static", "closure")
Kind = Literal["import", "script", "static", "closure"]


@dataclass(frozen=True)
class Failure:
    """A module that did not import, a console script that did not answer, a native file or a requirement that
    does not fit the target."""

    distribution: str
    module: str  # dotted module name, console script name, or for a closure failure the required distribution
    kind: Kind
    error: str  # the last line of the error: what allowlists match against
    detail: str  # the last lines of stderr, or the full finding
    file: str | None = None  # relative to the runtime prefix
    check: Check = "imports"

    def as_json(self) -> dict[str, Any]:
        data = {
            "check": self.check,
            "kind": self.kind,
            "distribution": self.distribution,
            "module": self.module,
            "file": self.file,
            "error": self.error,
            "detail": self.detail,
        }
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Failure:
        return cls(
            data["distribution"],
            data["module"],
            data["kind"],
            data["error"],
            data["detail"],
            data.get("file"),
            data["check"],
        )

    def describe(self, platform: str) -> str:
        """One line naming what failed, the distribution, the file, and the error."""
        what = {
            "import": f"import of module {self.module!r}",
            "script": f"console script {self.module!r}",
            "static": f"native file {self.module!r}",
            "closure": f"requirement {self.module!r}",
        }[self.kind]
        where = f" ({self.file})" if self.file else ""
        emulated = " under emulation" if self.check == "emulatedImports" else ""
        error = self.error.removeprefix(f"{self.file}: ") if self.file else self.error
        return f"{what} of distribution {self.distribution!r}{where} failed on {platform}{emulated}: {error}"


@dataclass
class CheckRun:
    """Whether one kind of check ran, why not, and what it counted."""

    ran: bool = False
    note: str = ""  # why it did not run, or how it ran (e.g. the emulator)
    counts: dict[str, int] = field(default_factory=dict)

    def as_json(self, failures: list[Failure], allowed: list[Failure], check: Check) -> dict[str, Any]:
        data: dict[str, Any] = {"ran": self.ran, **self.counts}
        if self.note:
            data["note"] = self.note
        data["failed"] = sum(f.check == check for f in failures)
        data["allowed"] = [f"{f.distribution}: {f.module}: {f.error}" for f in allowed if f.check == check]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckRun:
        counts = {k: v for k, v in data.items() if k not in ("ran", "note", "failed", "allowed")}
        return cls(bool(data["ran"]), str(data.get("note", "")), {k: int(v) for k, v in counts.items()})


@dataclass(frozen=True)
class UnusedAllowance:
    """An allowlist entry that matched no failure."""

    source: str
    key: str
    module: str

    def as_json(self) -> dict[str, str]:
        return {"source": self.source, "key": self.key, "module": self.module}


@dataclass
class VerifyReport:
    """What the checker did and what failed; `ok` when every failure is allowed."""

    platform: str
    distributions: int = 0
    relocated: bool = False
    checks: dict[Check, CheckRun] = field(default_factory=lambda: {c: CheckRun() for c in CHECKS})
    allowed: list[Failure] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unused: list[UnusedAllowance] = field(default_factory=list)
    seconds: float = 0.0
    reused: bool = False  # the same tarball bytes passed the same checks before: this is that report

    @property
    def ok(self) -> bool:
        return not self.failures

    def count(self, check: Check, name: str) -> int:
        return self.checks[check].counts.get(name, 0)

    def as_json(self) -> dict[str, Any]:
        """The full report, camelCase, with no null values (it also goes into the manifest's TOML)."""
        return {
            "platform": self.platform,
            "ok": self.ok,
            "relocated": self.relocated,
            "distributions": self.distributions,
            "seconds": self.seconds,
            **{c: run.as_json(self.failures, self.allowed, c) for c, run in self.checks.items()},
            "failures": [f.as_json() for f in self.failures],
            "allowedFailures": [f.as_json() for f in self.allowed],
            "warnings": list(self.warnings),
            "unusedAllowances": [u.as_json() for u in self.unused],
            **({"reused": True} if self.reused else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VerifyReport:
        """The report `as_json` gave (KeyError, TypeError or ValueError when it is not one)."""
        return cls(
            platform=str(data["platform"]),
            distributions=int(data["distributions"]),
            relocated=bool(data["relocated"]),
            checks={c: CheckRun.from_json(data[c]) for c in CHECKS},
            allowed=[Failure.from_json(f) for f in data["allowedFailures"]],
            failures=[Failure.from_json(f) for f in data["failures"]],
            warnings=[str(w) for w in data["warnings"]],
            unused=[UnusedAllowance(**u) for u in data["unusedAllowances"]],
            seconds=float(data["seconds"]),
        )

    def notices(self) -> list[str]:
        """Warnings for the user: start-up hooks and allowlist entries that matched nothing."""
        unused = [
            f"{u.source}: {u.key!r} {u.module!r} allowed no failure on {self.platform} (remove it?)"
            for u in self.unused
        ]
        return [*self.warnings, *unused]

    def summary(self) -> str:
        """One line: the first failure, or what was checked."""
        if self.failures:
            more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
            return self.failures[0].describe(self.platform) + more
        ran = [c for c, run in self.checks.items() if run.ran]
        imports: Check = "emulatedImports" if self.checks["emulatedImports"].ran else "imports"
        parts = []
        if self.checks[imports].ran:
            reused = self.count(imports, "reusedModules")
            parts.append(
                f"{counted(self.count(imports, 'modules'), 'module')} ({self.count(imports, 'extensionModules')} native"
                + (f"; {reused} of them passed before with the same bytes" if reused else "")
                + "), "
                f"{counted(self.count(imports, 'scripts'), 'console script')}"
                + (" under emulation" if imports == "emulatedImports" else "")
            )
        if self.checks["static"].ran:
            parts.append(counted(self.count("static", "nativeFiles"), "native file"))
        if self.checks["closure"].ran:
            parts.append(counted(self.count("closure", "requirements"), "requirement"))
        only = "" if self.checks[imports].ran else f" (static checks only: {self.checks['imports'].note})"
        allowed = f", {counted(len(self.allowed), 'allowed failure')}" if self.allowed else ""
        return (
            f"{', '.join(parts) or 'nothing'} of {counted(self.distributions, 'distribution')} ok on {self.platform}"
            f"{only}{allowed}{' (reused: these bytes passed these checks before)' if self.reused else ''}"
            if ran
            else f"nothing checked on {self.platform}"
        )


class VerifyError(BuildError):
    """The runtime failed verification; `report` holds every failure."""

    def __init__(self, report: VerifyReport) -> None:
        super().__init__(
            report.summary(),
            hint=f"fix the package, or allow the failure in checks/{report.platform}.json or verify.allow: "
            "{wheel glob or distribution: {module: error substring}}",
        )
        self.report = report


def counted(count: int, noun: str) -> str:
    """`1 requirement`, `3 requirements`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
