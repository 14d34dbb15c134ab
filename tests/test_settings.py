"""runenv's environment variables: read in one place, once per command, the same in every thread."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from runenv import settings
from runenv.settings import Settings

RUNENV = Path(__file__).resolve().parent.parent / "runenv"


def test_each_variable_is_parsed_into_its_field() -> None:
    given = Settings.from_environ(
        {
            "RUNENV_CACHE_DIR": " /srv/cache ",
            "RUNENV_SCRATCH_DIR": "/scratch",
            "RUNENV_PBS_MIRROR": "http://127.0.0.1:9/pbs/",
            "RUNENV_PBS_CATALOGUE": "cat.json",
            "RUNENV_QEMU_SYSROOT": "/usr/aarch64-linux-gnu",
            "SOURCE_DATE_EPOCH": "1700000000",
            "RUNENV_DISABLE_DISTUTILS_SHIM": "Yes",
            "RUNENV_PUBLISH_PASSWORD": " secret with spaces ",
            "RUNENV_PUBLISH_TARGET": "file:///srv/dist",
        }
    )
    assert given.cache_dir == "/srv/cache" and given.scratch_dir == "/scratch"
    assert given.pbs_mirror == "http://127.0.0.1:9/pbs/" and given.pbs_catalogue == "cat.json"
    assert given.qemu_sysroot == "/usr/aarch64-linux-gnu" and given.source_date_epoch == "1700000000"
    assert given.distutils_shim_off is True
    assert given.publish_password == " secret with spaces "  # a credential is taken as given
    assert given.publish_target == "file:///srv/dist"
    for word, off in (("1", True), ("on", True), ("0", False), ("", False), ("no", False)):
        assert Settings.from_environ({"RUNENV_DISABLE_DISTUTILS_SHIM": word}).distutils_shim_off is off
    assert Settings.from_environ({}) == Settings()


def test_a_command_sees_one_snapshot_in_every_thread(monkeypatch) -> None:
    monkeypatch.setenv("RUNENV_PBS_MIRROR", "http://127.0.0.1:9/first")
    with settings.use(Settings.from_environ()):
        monkeypatch.setenv("RUNENV_PBS_MIRROR", "http://127.0.0.1:9/changed-mid-command")
        with ThreadPoolExecutor(2) as pool:
            seen = set(pool.map(lambda _: settings.current().pbs_mirror, range(4)))
        assert seen == {"http://127.0.0.1:9/first"}
    assert settings.current().pbs_mirror == "http://127.0.0.1:9/changed-mid-command"  # outside: the environment


def test_no_other_module_reads_runenv_variables() -> None:
    reads = re.compile(r"(environ|getenv)\b[^\n]*[\"'](RUNENV_|SOURCE_DATE_EPOCH)")
    found = [
        f"{path.relative_to(RUNENV)}:{n}"
        for path in RUNENV.rglob("*.py")
        if path.name != "settings.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if reads.search(line) and "cli/" not in path.relative_to(RUNENV).as_posix()
    ]
    assert found == []
