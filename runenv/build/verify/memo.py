"""Verification reuse: a tarball whose bytes passed the same checks before gets that report again.

A passed report is kept at `<cache>/verified/<key>.json`. The key digests everything a report depends
on: the tarball's sha256, the platform and Python version, the settings (allowlist entries with where
they came from, floors, noDeps, exclusions, whether imports run), how this host runs the target
(natively, under which emulator, or not at all) and runenv's version. Failed reports are not kept: a
failure is checked again, so a fix outside runenv (a sysroot, an emulator) is seen at once. Entries are
written atomically; one that does not read back as a report is ignored and replaced.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import runenv
from runenv.build.verify.report import VerifyReport
from runenv.files import write_text_atomic

if TYPE_CHECKING:
    from runenv.build.verify.check import VerifySettings

MEMO_FORMAT = 1  # bump when what a passed report means changes


def memo_key(sha256: str, platform: str, python_version: str, settings: VerifySettings, runs_how: str) -> str:
    """The digest naming one verification: these bytes, these checks, this host's way of running them."""
    inputs = {
        "format": MEMO_FORMAT,
        "runenv": runenv.__version__,
        "sha256": sha256,
        "platform": platform,
        "python": python_version,
        "allow": [asdict(a) for a in settings.allow],
        "floors": asdict(settings.floors),
        "noDeps": sorted(settings.no_deps),
        "excluded": sorted(settings.excluded),
        "run": settings.run,
        "runsHow": runs_how,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _entry(cache_root: Path, key: str) -> Path:
    return cache_root / "verified" / f"{key}.json"


def recall(cache_root: Path, key: str) -> VerifyReport | None:
    """The passed report kept under `key`, marked reused; None when there is none or it is damaged."""
    try:
        report = VerifyReport.from_json(json.loads(_entry(cache_root, key).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not report.ok:
        return None
    report.reused = True
    return report


def remember(cache_root: Path, key: str, report: VerifyReport) -> None:
    """Keep a passed report; a cache that cannot be written only costs the next verification its time."""
    if not report.ok:
        return
    try:
        path = _entry(cache_root, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(report.as_json(), sort_keys=True))
    except OSError:
        pass
