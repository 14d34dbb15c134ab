"""Error types; each carries its exit code and renders as one line plus an optional hint."""

from __future__ import annotations


class RunenvError(Exception):
    """Base error: a one-line message, an optional hint, and the process exit code."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UsageError(RunenvError):
    """Bad command-line usage: unknown runtime, unknown platform, conflicting flags."""

    exit_code = 2


class ConfigError(RunenvError):
    """A config file is malformed, has unknown keys, or holds rules that contradict each other."""

    exit_code = 2


class StepError(RunenvError):
    """A build or publish step failed (network, integrity, tool failure)."""

    exit_code = 1


class FetchError(StepError):
    """A download failed or could not be attempted (offline, unreachable)."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status  # the HTTP status that refused the download, when a server answered


class IntegrityError(StepError):
    """Bytes did not match the expected sha256, or an archive is hostile."""


class BuildError(StepError):
    """Assembling, verifying or packing a runtime failed."""


class PublishError(StepError):
    """Uploading or cataloguing an artifact failed or was refused."""


class Cancelled(KeyboardInterrupt):
    """Every build is being stopped (Ctrl-C, SIGTERM, or another build of `--jobs` failed): raised where a build
    thread checks between steps. A KeyboardInterrupt, so it unwinds and cleans up exactly as Ctrl-C does and the
    CLI exits 130 (or 143 after SIGTERM)."""
