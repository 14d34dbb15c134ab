"""python-build-standalone archives: their names, the mirror they come from, their expected sha256 (a pin, the
catalogue or the release's SHA256SUMS) and the download."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from runenv import settings
from runenv.build.interpreter.catalogue import PbsCatalogue, load_catalogue
from runenv.config.load import LoadedConfig
from runenv.config.models import PythonConfig
from runenv.errors import ConfigError, FetchError, IntegrityError, StepError
from runenv.fetch import Download, Downloader
from runenv.platforms import Platform, get_platform
from runenv.redact import redact, register_url

DEFAULT_MIRROR = "https://github.com/astral-sh/python-build-standalone/releases/download"
MIRROR_ENV = settings.MIRROR_ENV
SUMS_NAME = "SHA256SUMS"
UNCATALOGUED_HINT = (
    "use a catalogued version (runenv python list), or set python.release to a python-build-standalone "
    "release tag that ships it"
)
MIRROR_HINT = f"set {MIRROR_ENV} (or python.mirror) to a reachable python-build-standalone mirror"


@dataclass(frozen=True)
class Mirror:
    """Base URL of PBS release downloads and where that choice came from."""

    url: str
    origin: str  # "RUNENV_PBS_MIRROR", "python.mirror" or "default"

    def release_url(self, release: str, name: str) -> str:
        return f"{self.url}/{release}/{name}"


@dataclass(frozen=True)
class PbsArchive:
    """One python-build-standalone archive: where it is and the sha256 it must have."""

    name: str
    url: str
    release: str
    flavor: str
    sha256: str
    hash_origin: str  # "config pin" or the SHA256SUMS URL
    mirror: Mirror

    @property
    def download(self) -> Download:
        return Download(self.url, self.sha256, self.name)


def archive_name(version: str, release: str, platform: Platform, flavor: str) -> str:
    """`cpython-<version>+<release>-<triple>-<flavor>.tar.gz`, as python-build-standalone names it."""
    return f"cpython-{version}+{release}-{platform.pbs_triple}-{flavor}.tar.gz"


def choose_mirror(python: PythonConfig) -> Mirror:
    """`RUNENV_PBS_MIRROR` beats `python.mirror` beats python-build-standalone's release downloads."""
    env = settings.current().pbs_mirror
    for url in (env, python.mirror or ""):
        register_url(url)
    if env:
        return Mirror(env.rstrip("/"), MIRROR_ENV)
    if python.mirror:
        return Mirror(python.mirror.rstrip("/"), "python.mirror")
    return Mirror(DEFAULT_MIRROR, "default")


def runtime_release(loaded: LoadedConfig, catalogue: PbsCatalogue | None = None) -> str:
    """`python.release`, else the newest catalogued release shipping the runtime's version for every platform in
    `build.platforms`; a version the catalogue cannot serve is a config error naming the runtime's file."""
    python = loaded.config.python
    if python.release:
        return python.release
    catalogue = catalogue or load_catalogue()
    version, where = loaded.runtime.version, loaded.runtime.config_path
    releases = catalogue.releases_of(version)
    if not releases:
        raise ConfigError(f"{where}: {catalogue.not_catalogued(version)}", hint=UNCATALOGUED_HINT)
    platforms = [get_platform(key) for key in loaded.config.build.platforms]
    release = catalogue.default_release(version, python.flavor, [p.pbs_triple for p in platforms])
    if release is None:
        newest = releases[0]
        have = catalogue.triples(newest, version)
        missing = [p.key for p in platforms if p.pbs_triple not in have]
        raise ConfigError(
            f"{where}: no catalogued release ships Python {version} for every platform in build.platforms "
            f"(the newest, {newest}, lacks {', '.join(missing)})",
            hint="set python.release, or leave those platforms out of build.platforms",
        )
    return release


def parse_sums(text: str) -> dict[str, str]:
    """{file name: sha256} from a `SHA256SUMS` document (`<hex>  <name>` or `<hex> *<name>`)."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^([0-9a-fA-F]{64})\s+\*?(\S.*?)\s*$", line)
        if match:
            sums[match[2].rsplit("/", 1)[-1]] = match[1].lower()
    return sums


def mirror_error(
    exc: StepError, mirror: Mirror, offline: bool, missing: str, archive: PbsArchive | None = None
) -> StepError:
    """A download failure restated with the mirror in use and how to change it; a hash mismatch says what was cached."""
    if isinstance(exc, IntegrityError) and archive is not None:
        kept = "the archive was not cached"
        if archive.hash_origin.endswith(SUMS_NAME):
            fresh = "offline: possibly stale" if offline else "fetched from the mirror in this run"
            kept += f"; the {SUMS_NAME} the hash comes from is cached ({fresh})"
        return IntegrityError(
            f"{exc.message} (expected hash from {archive.hash_origin}); refusing the interpreter",
            hint=f"the mirror ({mirror.origin}) serves other bytes than python-build-standalone "
            f"released as {archive.name}; fix or change the mirror ({kept})",
        )
    if offline:
        return exc
    return FetchError(f"{exc.message} (PBS mirror from {mirror.origin})", hint=mirror_hint(exc, mirror, missing))


def mirror_hint(exc: StepError, mirror: Mirror, missing: str) -> str:
    """The next step after a failed PBS download: a mirror that answered 404 lacks the file; only an
    unreachable default says to set a mirror."""
    chosen = mirror.origin != "default"
    if isinstance(exc, FetchError) and exc.status == 404:
        where = "the mirror" if chosen else "python-build-standalone's downloads"
        fix = f"check python.release or {mirror.origin}" if chosen else "check python.release and python.flavor"
        return f"{where} has no {missing}; {fix} (runenv python list VERSION shows the catalogued releases)"
    if chosen:
        return f"check that {mirror.origin} ({mirror.url}) is a reachable python-build-standalone mirror"
    return MIRROR_HINT


class MissingArchive(FetchError):
    """The release lists no archive for a platform (its `SHA256SUMS` has no such name)."""


class SumsSource:
    """The `SHA256SUMS` of PBS releases, fetched once per release URL and reused from the cache.

    A release's archives do not change, so a cached copy that lists the wanted archive is used as is
    (a rebuild downloads nothing); one that lacks it, or whose hash an archive fails (`refresh`), is
    fetched again, at most once per run.
    """

    def __init__(self, downloader: Downloader) -> None:
        self.downloader = downloader
        self.cache = downloader.cache
        self.offline = downloader.offline
        self._sums: dict[str, dict[str, str]] = {}
        self._fetched: set[str] = set()  # URLs read from the mirror in this run
        self._lock = threading.Lock()  # builds running in threads fetch each SHA256SUMS once

    def sums(self, mirror: Mirror, release: str, wanted: str | None = None) -> tuple[str, dict[str, str]]:
        url = mirror.release_url(release, SUMS_NAME)
        with self._lock:
            if url not in self._sums:
                cached = None if self.offline else self.cache.recall(url)
                self._sums[url] = parse_sums(self.cache.path(cached).read_text(encoding="utf-8")) if cached else {}
            table = self._sums[url]
            if (not table or (wanted and wanted not in table)) and url not in self._fetched:
                table = self._fetch(mirror, url)
            return url, table

    def refresh(self, mirror: Mirror, release: str) -> bool:
        """Fetch a release's `SHA256SUMS` again unless it was fetched in this run (or offline); True if it was."""
        url = mirror.release_url(release, SUMS_NAME)
        with self._lock:
            if self.offline or url in self._fetched:
                return False
            self._fetch(mirror, url)
            return True

    def _fetch(self, mirror: Mirror, url: str) -> dict[str, str]:
        try:
            text = self.downloader.text(url)
        except FetchError as exc:
            raise mirror_error(exc, mirror, self.offline, url.removeprefix(f"{mirror.url}/")) from None
        self._fetched.add(url)
        self._sums[url] = parse_sums(text)
        return self._sums[url]


def pbs_archive(loaded: LoadedConfig, platform: Platform, sums: SumsSource) -> PbsArchive:
    """The archive for a runtime on a platform with its expected hash: a config pin, else the catalogue's,
    else the release's `SHA256SUMS`."""
    python = loaded.config.python
    catalogue = load_catalogue()
    release = runtime_release(loaded, catalogue)
    name = archive_name(loaded.runtime.version, release, platform, python.flavor)
    mirror = choose_mirror(python)
    url = mirror.release_url(release, name)
    pinned = python.sha256.get(platform.key)
    if pinned:
        return PbsArchive(name, url, release, python.flavor, pinned, "config pin", mirror)
    catalogued = catalogue.sha256(release, loaded.runtime.version, python.flavor, platform.pbs_triple)
    if catalogued:
        return PbsArchive(name, url, release, python.flavor, catalogued, catalogue.origin, mirror)
    sums_url, table = sums.sums(mirror, release, name)
    if name not in table:
        raise MissingArchive(
            f"no sha256 for {name} in {redact(sums_url)}; refusing an unverified interpreter",
            hint=f"check python.release/flavor, or pin python.sha256.{platform.key} in {loaded.runtime.config_path}",
        )
    return PbsArchive(name, url, release, python.flavor, table[name], redact(sums_url), mirror)


def fetch_archive(archive: PbsArchive, downloader: Downloader) -> Path:
    """The archive's path in the cache, downloading and verifying it when missing."""
    try:
        paths = downloader.fetch([archive.download])
    except (FetchError, IntegrityError) as exc:
        where = f"{archive.release}/{archive.name}"
        raise mirror_error(exc, archive.mirror, downloader.offline, where, archive) from None
    return paths[archive.sha256]


def fetch_pbs_archive(
    loaded: LoadedConfig, platform: Platform, sums: SumsSource, downloader: Downloader
) -> tuple[PbsArchive, Path]:
    """The archive and its cache path; a hash mismatch against a cached `SHA256SUMS` fetches the list once more."""
    archive = pbs_archive(loaded, platform, sums)
    try:
        return archive, fetch_archive(archive, downloader)
    except IntegrityError:
        from_sums = archive.hash_origin.endswith(SUMS_NAME)  # not a config pin or the catalogue
        if not from_sums or not sums.refresh(archive.mirror, archive.release):
            raise
    archive = pbs_archive(loaded, platform, sums)
    return archive, fetch_archive(archive, downloader)
