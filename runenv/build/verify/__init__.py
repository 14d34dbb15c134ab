"""Verify (ARCHITECTURE §7): prove a built runtime for its platform from one Linux host.

discovery (what is installed) → static checks (native files, libraries, floors) and the closure everywhere;
imports (forkserver.py, run by the runtime's interpreter) and the smoke test where the host can run the target,
natively or under qemu (launcher); allowlist decides what may fail; report says what ran.
"""

from runenv.build.verify.allowlist import Allowance, allowances, load_allowances, read_checks_file
from runenv.build.verify.check import VerifySettings, check_prefix, settings_for, verify_tarball
from runenv.build.verify.discovery import Distribution, find_distributions
from runenv.build.verify.report import Failure, VerifyError, VerifyReport

__all__ = [
    "Allowance",
    "allowances",
    "Distribution",
    "Failure",
    "VerifyError",
    "VerifyReport",
    "VerifySettings",
    "check_prefix",
    "find_distributions",
    "load_allowances",
    "read_checks_file",
    "settings_for",
    "verify_tarball",
]
