"""One verification of one runtime for one platform: static checks and the closure everywhere, imports and the
relocation smoke test where this host can run the target (natively or under emulation), one report."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from runenv.build.verify import memo
from runenv.build.verify.allowlist import Allowance, load_allowances, split_allowed
from runenv.build.verify.closure import check_closure
from runenv.build.verify.discovery import find_distributions, manifest_skipped, native_files, startup_hooks
from runenv.build.verify.imports import run_imports, smoke_test
from runenv.build.verify.launcher import Launcher, find_launcher
from runenv.build.verify.proven import ProvenImports, digests_of
from runenv.build.verify.report import Check, VerifyError, VerifyReport
from runenv.build.verify.static import Floors, ParsedFiles, check_native_files
from runenv.config.load import LoadedConfig
from runenv.ops.stamps import known_sha256
from runenv.ops.unpack import extract_tarball, single_top_dir
from runenv.plan import build_plan
from runenv.platforms import DEFAULT_MANYLINUX, Platform, RuntimeLayout
from runenv.scratch import scratch_dir


@dataclass(frozen=True)
class VerifySettings:
    """What a runtime promises on its platform, and what is allowed to fail."""

    allow: list[Allowance] = field(default_factory=list)
    floors: Floors = Floors(DEFAULT_MANYLINUX)
    no_deps: Collection[str] = ()
    excluded: Collection[str] = ()  # left out on purpose wherever they appear: requirements on them are no failures
    run: bool = True  # run imports and the smoke test where the host can (False: static checks only)


def settings_for(workspace_root: Path, loaded: LoadedConfig, platform_key: str, run: bool = True) -> VerifySettings:
    """The settings a runtime's merged config gives for one platform (allowlists read and checked)."""
    build = loaded.config.build
    allow = load_allowances(workspace_root, platform_key, loaded.config.verify.allow)
    excluded = tuple(build_plan(loaded, platform_key).excluded)
    floors = Floors(build.manylinux, build.macosx)
    return VerifySettings(allow, floors, tuple(loaded.config.packages.no_deps), excluded, run)


def check_prefix(
    layout: RuntimeLayout,
    settings: VerifySettings | None = None,
    workers: int | None = None,
    launcher: Launcher | None = None,
    files: dict[str, str] | None = None,
    cache_root: Path | None = None,
    reuse: bool = True,
) -> VerifyReport:
    """Every check of an unpacked runtime laid out as `layout`; the report holds failures and allowed failures. With
    `files` (each file's sha256, as unpacked) and `cache_root`, import results are kept per distribution and
    reused (runenv.build.verify.proven) unless `reuse` is false, and native files are parsed once by content."""
    settings = settings or VerifySettings()
    started = time.monotonic()
    platform, python_version = layout.platform, layout.version
    report = VerifyReport(platform.key)
    dists = find_distributions(layout)
    report.distributions = len(dists)
    report.warnings = startup_hooks(dists, platform, python_version)
    if launcher is None:
        found, how = find_launcher(platform)
    else:
        found, how = launcher, f"under {launcher.emulator}" if launcher.emulator else "natively"
    imports: Check = "emulatedImports" if found is not None and found.argv else "imports"
    failures = []
    with ThreadPoolExecutor(max_workers=1) as pool:  # static checks read files while the imports run processes
        candidates = native_files(layout, dists)
        parsed = ParsedFiles(cache_root, files) if files is not None and cache_root is not None else None
        static = pool.submit(check_native_files, layout, candidates, settings.floors, parsed_files=parsed)
        if found is not None and settings.run:
            run = report.checks[imports]
            run.ran, run.note = True, how
            kept = None
            if files is not None and cache_root is not None:
                site = platform.site_packages(python_version)
                digests = digests_of(files, dists, site, platform.key, python_version, how)
                kept = ProvenImports(cache_root, digests, reuse=reuse)
            failed, run.counts = run_imports(found, layout, dists, imports, workers, kept)
            failures += failed
        else:
            report.checks["imports"].note = how if settings.run else "not asked for"
        if imports == "imports":
            report.checks["emulatedImports"].note = "not needed" if found is not None else how
        else:
            report.checks["imports"].note = f"this host runs {platform.key} only under emulation"
        failures += static.result()
    report.checks["static"].ran = True
    report.checks["static"].counts = {
        "nativeFiles": len(candidates),
        "packageFiles": sum(c.from_package for c in candidates),
    }
    closure, requirements = check_closure(
        dists,
        platform,
        python_version,
        skipped={**dict.fromkeys(settings.excluded, "excluded"), **manifest_skipped(layout.prefix)},
        no_deps=settings.no_deps,
    )
    report.checks["closure"].ran = True
    report.checks["closure"].counts = {"requirements": requirements}
    failures += closure
    wheels = {d.name: d.wheel for d in dists}
    report.allowed, report.failures, report.unused = split_allowed(failures, settings.allow, wheels)
    report.seconds = round(time.monotonic() - started, 2)
    return report


def verify_tarball(
    tarball: Path,
    platform: Platform,
    python_version: str,
    settings: VerifySettings | None,
    *,
    scratch: Path,
    cache_root: Path | None = None,
    sha256: str | None = None,
    reuse: bool = True,
) -> VerifyReport:
    """Unpack `tarball` into a new directory in `scratch`, move it to a second path, and check it there;
    raises VerifyError on failures. With `cache_root`, a tarball whose bytes (`sha256`, hashed when not
    given) passed the same checks before gets that report back, marked reused (runenv.build.verify.memo); with
    `reuse` False it is checked again and the new report kept."""
    settings = settings or VerifySettings()
    launcher, how = find_launcher(platform)
    key = None
    if cache_root is not None:
        key = memo.memo_key(sha256 or known_sha256(tarball, cache_root), platform.key, python_version, settings, how)
        if reuse and (kept := memo.recall(cache_root, key)) is not None:
            return kept
    with scratch_dir(scratch, "verify") as work:
        unpacked = work / "unpacked"
        unpacked.mkdir()
        digests: dict[str, str] | None = {} if cache_root is not None else None
        extract_tarball(tarball, unpacked, digests)
        top = single_top_dir(unpacked, tarball)
        files = None if digests is None else {p.split("/", 1)[1]: d for p, d in digests.items() if "/" in p}
        relocated = work / "relocated" / top.name
        relocated.parent.mkdir()
        os.rename(top, relocated)
        shutil.rmtree(unpacked)
        runs = launcher is not None and settings.run
        layout = RuntimeLayout(relocated, platform, python_version)
        with ThreadPoolExecutor(max_workers=1) as pool:  # the smoke test beside the other checks
            smoke = pool.submit(smoke_test, launcher, layout) if launcher is not None and settings.run else None
            report = check_prefix(
                layout,
                settings,
                launcher=launcher,
                files=files,
                cache_root=cache_root,
                reuse=reuse,
            )
            if smoke is not None:
                smoke.result()  # a runtime that does not know where it lives fails with that first
        report.relocated = runs
    if not report.ok:
        raise VerifyError(report)
    if cache_root is not None and key is not None:
        memo.remember(cache_root, key, report)
    return report
