"""CLI commands: `python list` (the PBS catalogue) and `python pin`."""

from __future__ import annotations

import re
from typing import Any

import typer

from runenv.build.interpreter.catalogue import PbsCatalogue, load_catalogue
from runenv.build.interpreter.pbs import SumsSource
from runenv.build.interpreter.pins import pin_runtime
from runenv.cache import Cache
from runenv.cli.app import app, complete_platform, complete_runtime, options
from runenv.config import load_runtime_config
from runenv.errors import UsageError
from runenv.fetch import Downloader
from runenv.platforms import PLATFORMS, get_platform

python_app = typer.Typer(help="Manage the runtimes' interpreters.", no_args_is_help=True)
app.add_typer(python_app, name="python")

PLATFORM_OF_TRIPLE = {p.pbs_triple: p.key for p in PLATFORMS.values()}


def _versions_matching(catalogue: PbsCatalogue, query: str | None) -> list[str]:
    """Catalogued versions for `X.Y.Z`, every `X.Y.*`, or all; an unknown query is a usage error."""
    if query is None:
        return catalogue.versions()
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", query):
        raise UsageError(f"invalid Python version {query[:40]!r}", hint="expected X.Y or X.Y.Z, e.g. 3.12 or 3.12.10")
    if query.count(".") == 2:
        if not catalogue.releases_of(query):
            raise UsageError(catalogue.not_catalogued(query))
        return [query]
    found = [v for v in catalogue.versions() if v.startswith(f"{query}.")]
    if not found:
        raise UsageError(
            f"no Python {query}.x in {catalogue.origin}", hint=f"catalogued: {', '.join(catalogue.minors())}"
        )
    return found


def _version_json(catalogue: PbsCatalogue, version: str) -> dict[str, Any]:
    releases: dict[str, list[dict[str, str | None]]] = {}
    for archive in catalogue.archives(version):
        releases.setdefault(archive.release, []).append(
            {
                "platform": PLATFORM_OF_TRIPLE.get(archive.triple),
                "triple": archive.triple,
                "flavor": archive.flavor,
                "sha256": archive.sha256,
            }
        )
    return {
        "version": version,
        "newestRelease": next(iter(releases)),
        "releases": [{"release": tag, "archives": archives} for tag, archives in releases.items()],
    }


def _summary_text(rows: list[dict[str, Any]]) -> str:
    table = [("VERSION", "NEWEST RELEASE", "RELEASES")]
    table += [(r["version"], r["newestRelease"], str(len(r["releases"]))) for r in rows]
    return "\n".join(f"{v:<10} {n:<15} {c}" for v, n, c in table)


def _archives_text(row: dict[str, Any]) -> str:
    lines = [f"{'RELEASE':<9} {'FLAVOR':<22} {'PLATFORM':<15} SHA256"]
    for release in row["releases"]:
        for a in release["archives"]:
            lines.append(f"{release['release']:<9} {a['flavor']:<22} {a['platform'] or a['triple']:<15} {a['sha256']}")
    return "\n".join(lines)


@python_app.command("list")
def list_catalogue(
    ctx: typer.Context,
    version: str | None = typer.Argument(None, help="X.Y.Z (its archives and hashes) or X.Y (its patch releases)."),
) -> None:
    """Show the python-build-standalone releases runenv knows: which release ships which CPython, and hashes."""
    opts = options(ctx)
    catalogue = load_catalogue()
    rows = [_version_json(catalogue, v) for v in _versions_matching(catalogue, version)]
    data = {
        "catalogue": catalogue.origin,
        "source": catalogue.source,
        "generated": catalogue.generated,
        "versions": rows,
    }
    exact = version is not None and version.count(".") == 2
    opts.emit(data, lambda: _archives_text(rows[0]) if exact else _summary_text(rows))


@python_app.command("pin")
def pin(
    ctx: typer.Context,
    runtime: str = typer.Argument(
        ..., help="Runtime whose interpreter hashes to pin, e.g. 3.12.10.", autocompletion=complete_runtime
    ),
    platform: list[str] = typer.Option(
        [],
        "--platform",
        "-p",
        help="Platform to pin (repeatable; default: build.platforms the release has).",
        autocompletion=complete_platform,
    ),
    offline: bool = typer.Option(False, "--offline", help="Use only a cached SHA256SUMS."),
) -> None:
    """Write python.sha256 for the runtime's platforms (and the release in use) into its config.json.

    Without --platform, platforms of build.platforms the release has no archive for are skipped with a warning;
    a --platform the release lacks is an error."""
    opts = options(ctx)
    ws = opts.workspace()
    loaded = load_runtime_config(ws, ws.runtime(runtime))
    keys = [get_platform(key).key for key in dict.fromkeys(platform)]
    sums = SumsSource(Downloader(Cache(), loaded.config.build.timeout, offline))
    pins = pin_runtime(loaded, sums, keys or None)
    for key, why in pins.missing.items():
        opts.warn(f"{key} not pinned: {why}")
    opts.emit(
        {
            "runtime": loaded.runtime.name,
            "config": str(loaded.runtime.config_path),
            "release": pins.release,
            "sha256": pins.sha256,
            "missing": pins.missing,
        },
        lambda: (
            "\n".join(f"{key:<15} {sha}" for key, sha in pins.sha256.items())
            + f"\nrelease {pins.release} pinned in {loaded.runtime.config_path}"
        ),
    )
