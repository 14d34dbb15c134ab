# ruff: noqa: E501  (uv messages are pasted verbatim)
"""Reading uv's output: the packages its errors say lack a wheel, and its annotated resolution.

The messages are real: produced by uv 0.13.9 (`uv pip compile --only-binary :all:`) against loopback
indexes built with tests/helpers/index.py, pasted verbatim.
"""

from __future__ import annotations

import pytest

from runenv.resolve import no_wheel_names, parse_annotations

NAME_DEV_RANGE = """\
error: No solution found when resolving dependencies
  cause: Because name>=1.0.dev1 has no usable wheels and you require name>=1.0.dev1, we can conclude that your requirements are unsatisfiable.

hint: Wheels are required for `name` because building from source is disabled for all packages (i.e., with `--no-build`)
"""

# As quoted in issue 10 (a seed workspace's lock): a range with a dev release.
RPY2_RANGE = "rpy2-rinterface>=3.6.0.dev1 has no usable wheels"

ALL_VERSIONS_TRANSITIVE = """\
error: No solution found when resolving dependencies
  cause: Because all versions of rpy2-rinterface have no usable wheels and all versions of rpy2 depend on rpy2-rinterface, we can conclude that all versions of rpy2 cannot be used.
         And because you require rpy2, we can conclude that your requirements are unsatisfiable.

hint: Wheels are required for `rpy2-rinterface` because building from source is disabled for all packages (i.e., with `--no-build`)
"""

PINNED_SDIST_ONLY = """\
error: No solution found when resolving dependencies
  cause: Because freesasa==2.2.1 has no usable wheels and only freesasa==2.2.1 is available, we can conclude that all versions of freesasa cannot be used.
         And because all versions of two depend on freesasa and you require two, we can conclude that your requirements are unsatisfiable.

hint: Wheels are required for `freesasa` because building from source is disabled for all packages (i.e., with `--no-build`)
"""

WRONG_PLATFORM_TAG = """\
error: No solution found when resolving dependencies
  cause: Because winonly==1.0 has no wheels with a matching platform tag (e.g., `manylinux_2_28_x86_64`) and only winonly==1.0 is available, we can conclude that all versions of winonly cannot be used.
         And because all versions of needs-win depend on winonly and you require needs-win, we can conclude that your requirements are unsatisfiable.

hint: Wheels are available for `winonly` (v1.0) on the following platform: `win_amd64`
"""

VERSION_LIST = """\
error: No solution found when resolving dependencies
  cause: Because rpy2-rinterface==3.6.0.dev1 has no usable wheels and only rpy2-rinterface>=3.6.0.dev1 is available, we can conclude that rpy2-rinterface<=3.6.0.dev1 cannot be used.
         And because only the following versions of rpy2-rinterface are available:
             rpy2-rinterface<=3.6.0
             rpy2-rinterface>=3.6.1
         we can conclude that rpy2-rinterface<=3.6.0.dev1 cannot be used.
         And because only the following versions of rpy2-rinterface are available:
             rpy2-rinterface<=3.6.0.dev1
             rpy2-rinterface>=3.6.0
         and you require rpy2-rinterface<3.6.0, we can conclude that your requirements are unsatisfiable.

hint: Wheels are required for `rpy2-rinterface` because building from source is disabled for all packages (i.e., with `--no-build`)
"""

UNREACHABLE = """\
error: Request failed after 3 retries in 7.0s
  cause: Failed to fetch: http://127.0.0.1:9/simple/pkg/
  cause: error sending request for url (http://127.0.0.1:9/simple/pkg/)
  cause: client error (Connect)
  cause: tcp connect error
  cause: Connection refused (os error 111)
"""


@pytest.mark.parametrize(
    ("message", "names"),
    [
        (NAME_DEV_RANGE, ["name"]),
        (RPY2_RANGE, ["rpy2-rinterface"]),
        (ALL_VERSIONS_TRANSITIVE, ["rpy2-rinterface"]),
        (PINNED_SDIST_ONLY, ["freesasa"]),
        (WRONG_PLATFORM_TAG, ["winonly"]),
        (VERSION_LIST, ["rpy2-rinterface"]),
        (UNREACHABLE, []),
        ("  cause: Because foo<1.0 | >3.0 has no usable wheels", ["foo"]),
    ],
)
def test_no_wheel_names_reads_the_package_not_its_version(message, names):
    assert no_wheel_names(message) == names


ANNOTATED = """\
freesasa==2.2.1           # via prodigy-prot
    # from http://127.0.0.1:18081/simple
prodigy-prot==1.0         # via -r requirements.in
    # from http://127.0.0.1:18081/simple
rpy2==3.6.0               # via sccoda, -r requirements.in
    # from http://127.0.0.1:18081/simple
rpy2-rinterface==3.6.0.dev1  # via rpy2
    # from http://127.0.0.1:18082/simple
sccoda==1.0               # via -r requirements.in
    # from http://127.0.0.1:18081/simple
"""


def test_parse_annotations_gives_index_and_parents_per_package():
    index, parents = parse_annotations(ANNOTATED)
    assert index["rpy2-rinterface"] == "http://127.0.0.1:18082/simple"
    assert parents == {
        "freesasa": ["prodigy-prot"],
        "prodigy-prot": [""],
        "rpy2": ["sccoda", ""],
        "rpy2-rinterface": ["rpy2"],
        "sccoda": [""],
    }


def test_parse_annotations_reads_direct_references():
    index, parents = parse_annotations("tool @ git+https://example.invalid/tool.git@0123abc  # via -r r.in\n")
    assert parents == {"tool": [""]} and index == {}
