"""The interpreter stage: python-build-standalone archives (pbs.py, catalogue.py, pins.py for `python pin`) or a
local prefix (relocate.py); version.py asks the executable its version."""
