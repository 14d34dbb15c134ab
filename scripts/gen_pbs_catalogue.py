#!/usr/bin/env python3
"""Generate runenv's python-build-standalone catalogue from uv's published download metadata.

uv keeps `crates/uv-python/download-metadata.json` in its repository: for each CPython build it
downloads, the archive URL and its sha256. Each revision lists the newest release per version, so
reading the file's whole git history yields every release uv adopted. Only CPython, the five target
triples runenv builds for, the `install_only` / `install_only_stripped` flavors and plain builds
(no freethreaded/debug variants, no pre-releases) are kept.

    python3 scripts/gen_pbs_catalogue.py download-metadata.json [more.json …]
    python3 scripts/gen_pbs_catalogue.py --git-dir /path/to/uv/.git      # every revision of the file
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runenv.platforms import PLATFORMS  # noqa: E402

METADATA_PATH = "crates/uv-python/download-metadata.json"
OUT = Path(__file__).resolve().parent.parent / "runenv" / "data" / "pbs-catalogue.json"
FLAVORS = ("install_only_stripped", "install_only")
TRIPLES = {p.pbs_triple for p in PLATFORMS.values()}
ARCHIVE_RE = re.compile(
    r"^cpython-(?P<version>\d+\.\d+\.\d+)\+(?P<release>\d{8})-(?P<triple>.+?)-(?P<flavor>install_only(?:_stripped)?)"
    r"\.tar\.gz$"
)

Catalogue = dict[str, dict[str, dict[str, dict[str, str]]]]  # release -> version -> flavor -> triple -> sha256


def downloads(metadata: object) -> list[dict]:
    """The download entries of one metadata document (an object keyed by build name, or a list)."""
    entries = list(metadata.values()) if isinstance(metadata, dict) else metadata
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def add_document(catalogue: Catalogue, metadata: object, origin: str) -> int:
    """Fold the CPython archives of one metadata document into `catalogue`; returns how many it held."""
    count = 0
    for entry in downloads(metadata):
        if entry.get("name") != "cpython" or entry.get("variant") or entry.get("prerelease"):
            continue
        url, sha256 = entry.get("url"), entry.get("sha256")
        if not isinstance(url, str) or not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
            continue
        name = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        match = ARCHIVE_RE.match(name)
        if not match or match["triple"] not in TRIPLES:
            continue
        flavors = catalogue.setdefault(match["release"], {}).setdefault(match["version"], {})
        known = flavors.setdefault(match["flavor"], {}).setdefault(match["triple"], sha256)
        if known != sha256:
            raise SystemExit(f"{origin}: {name} has sha256 {sha256}, an earlier document said {known}")
        count += 1
    return count


def git_revisions(git_dir: Path) -> list[tuple[str, str]]:
    """(commit, commit date) of every revision of the metadata file, newest first."""
    log = subprocess.run(
        ["git", f"--git-dir={git_dir}", "log", "--format=%H %cs", "--", METADATA_PATH],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [tuple(line.split(" ", 1)) for line in log.splitlines() if line]  # type: ignore[misc]


def git_document(git_dir: Path, commit: str) -> object:
    show = ["git", f"--git-dir={git_dir}", "show", f"{commit}:{METADATA_PATH}"]
    return json.loads(subprocess.run(show, check=True, capture_output=True).stdout)


def sorted_catalogue(catalogue: Catalogue) -> Catalogue:
    """Releases newest first, versions newest first, then flavors and triples in name order."""

    def version_key(version: str) -> tuple[int, ...]:
        return tuple(int(p) for p in version.split("."))

    return {
        release: {
            version: {flavor: dict(sorted(by_triple.items())) for flavor, by_triple in sorted(flavors.items())}
            for version, flavors in sorted(versions.items(), key=lambda kv: version_key(kv[0]), reverse=True)
        }
        for release, versions in sorted(catalogue.items(), reverse=True)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metadata", nargs="*", type=Path, help="download-metadata.json files")
    parser.add_argument("--git-dir", type=Path, help=f"a uv git repository: read every revision of {METADATA_PATH}")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output file (default: {OUT})")
    args = parser.parse_args(argv)
    if not args.metadata and not args.git_dir:
        parser.error("give metadata files or --git-dir")
    catalogue: Catalogue = {}
    sources = []
    for path in args.metadata:
        add_document(catalogue, json.loads(path.read_text(encoding="utf-8")), str(path))
        sources.append(f"{path.name}")
    if args.git_dir:
        revisions = git_revisions(args.git_dir)
        for commit, _date in revisions:
            add_document(catalogue, git_document(args.git_dir, commit), commit)
        newest, date = revisions[0]
        sources.append(f"astral-sh/uv {METADATA_PATH}, {len(revisions)} revisions up to commit {newest} ({date})")
    data = {
        "source": "; ".join(sources),
        "generated": datetime.date.today().isoformat(),
        "generator": "scripts/gen_pbs_catalogue.py",
        "flavors": list(FLAVORS),
        "releases": sorted_catalogue(catalogue),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    archives = sum(len(t) for v in catalogue.values() for f in v.values() for t in f.values())
    print(f"{args.out}: {len(catalogue)} releases, {archives} archives", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
