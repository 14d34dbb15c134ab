"""The byte-compiling worker (of bytecode.py beside it). This file runs in the interpreter whose bytecode it writes,
as `python -s -S -B -c <this file's text>`: it reads `[[source, shown-as], …]` as JSON on stdin, compiles each
source to a checked-hash .pyc beside it that records `shown-as` as its source path, and writes the list of
errors as JSON on stdout. It imports only the stdlib, so it runs on every Python runenv builds for.
"""

import json
import py_compile
import sys


def main() -> None:
    mode = py_compile.PycInvalidationMode.CHECKED_HASH
    errors = []
    for source, shown in json.load(sys.stdin):
        try:
            py_compile.compile(source, dfile=shown, doraise=True, invalidation_mode=mode)
        except Exception as exc:  # every failure is reported by the caller, with the file it names
            errors.append(" ".join(str(exc).split()))
    json.dump(errors, sys.stdout)


if __name__ == "__main__":
    main()
