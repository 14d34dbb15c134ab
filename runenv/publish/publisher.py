"""Publishing: decide per artifact (upload, already published, refused), upload, then update the catalogue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from runenv.errors import PublishError
from runenv.progress import phase
from runenv.publish.artifacts import LocalArtifact, Sources, build_hint, load_artifact, verify_local
from runenv.publish.catalogue import catalogue_entry, now_utc
from runenv.publish.targets.base import Progress, RemoteFile, Target
from runenv.workspace import Runtime, Workspace

Action = Literal["upload", "replace", "skip", "refuse"]


@dataclass
class PublishItem:
    """One (runtime, platform) and what publish does with it."""

    runtime: str
    platform: str
    action: Action
    reason: str = ""
    hint: str | None = None
    artifact: LocalArtifact | None = None
    remote: RemoteFile | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"runtime": self.runtime, "platform": self.platform}
        if self.artifact:
            data.update(file=self.artifact.filename, size=self.artifact.size, sha256=self.artifact.sha256)
        if self.remote and self.action in ("refuse", "replace"):
            data["remoteSha256"] = self.remote.sha256
        if self.reason:
            data["reason"] = self.reason
        if self.hint:
            data["hint"] = self.hint
        return data


@dataclass
class PublishReport:
    target: str
    items: list[PublishItem]
    dry_run: bool
    uploaded: list[PublishItem] = field(default_factory=list)

    def of(self, *actions: Action) -> list[PublishItem]:
        return [i for i in self.items if i.action in actions]

    def uploads(self) -> list[tuple[PublishItem, LocalArtifact]]:
        """The items to upload (new or replacing), each with its local artifact."""
        return [(i, i.artifact) for i in self.of("upload", "replace") if i.artifact is not None]

    @property
    def refused(self) -> list[PublishItem]:
        return self.of("refuse")

    def as_json(self) -> dict[str, Any]:
        data = {
            "target": self.target,
            "dryRun": self.dry_run,
            "uploaded": [i.as_json() for i in self.uploaded],
            "skipped": [i.as_json() for i in self.of("skip")],
            "refused": [i.as_json() for i in self.refused],
        }
        if self.dry_run:
            data["wouldUpload"] = [i.as_json() for i in self.of("upload", "replace")]
        return data


def decide(artifact: LocalArtifact, remote: RemoteFile | None, force: bool) -> tuple[Action, str]:
    """What to do with a local artifact given what the target holds under its name."""
    if remote is None:
        return "upload", ""
    if remote.sha256 == artifact.sha256 and remote.size == artifact.size:
        return "skip", "already published"
    conflict = (
        f"{artifact.filename} is already published with other bytes: remote sha256 {remote.sha256}, "
        f"local sha256 {artifact.sha256}"
    )
    if force:
        return "replace", conflict + " (replaced: --force)"
    return "refuse", conflict


def plan_item(
    ws: Workspace, rt: Runtime, platform: str, target: Target, force: bool, sources: Sources = None
) -> PublishItem:
    """Check the local artifact (built, fresh, intact; in dist/ or `sources`) and compare it with the target."""
    try:
        artifact = load_artifact(ws, rt, platform, sources)
        verify_local(artifact)
    except PublishError as exc:
        return PublishItem(rt.name, platform, "refuse", exc.message, exc.hint)
    remote = target.lookup(artifact)
    action, reason = decide(artifact, remote, force)
    hint = "pass --force to replace it, or publish a new runtime version" if action == "refuse" else None
    return PublishItem(rt.name, platform, action, reason, hint, artifact, remote)


def not_built(rt: Runtime, platforms: list[str]) -> PublishItem:
    """The refusal for a runtime with no built artifact among its configured platforms."""
    hint = build_hint(rt.name, platforms[0]) if len(platforms) == 1 else f"run `runenv build {rt.name}`"
    where = ", ".join(platforms) or "any platform"
    return PublishItem(rt.name, "-", "refuse", f"runtime {rt.name} is not built for {where}", hint)


def _both(first: Progress, second: Progress) -> Progress:
    def sent(n: int) -> None:
        first(n)
        second(n)

    return sent


def publish(
    target: Target,
    items: list[PublishItem],
    *,
    dry_run: bool,
    progress: Callable[[LocalArtifact], Progress],
) -> PublishReport:
    """Upload every item that needs it, then list everything in place in the catalogue.

    Nothing is uploaded when any item is refused; the catalogue is written only after all uploads are verified.
    """
    report = PublishReport(target.display, items, dry_run)
    if dry_run or report.refused:
        return report
    target.read_catalogue()  # an unreadable catalogue fails before anything is uploaded
    for item, artifact in report.uploads():
        with phase("upload", total=artifact.size, unit="B") as step:
            step.detail = artifact.filename
            remote = target.upload(artifact, _both(progress(artifact), step.advance))
        if (remote.size, remote.sha256) != (artifact.size, artifact.sha256):
            raise PublishError(
                f"{artifact.filename} on {target.display} does not match after upload: remote "
                f"{remote.size} bytes sha256 {remote.sha256}, local {artifact.size} bytes sha256 "
                f"{artifact.sha256}"
            )
        report.uploaded.append(item)
    published = now_utc()
    placed = [i.artifact for i in items if i.action != "refuse" and i.artifact is not None]
    # Re-read and merged under the target's own concurrency control: other publishers may be at work.
    target.add_to_catalogue([(a, catalogue_entry(a, target.location(a), published)) for a in placed])
    return report
