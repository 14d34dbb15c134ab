"""The interpreter stage: python-build-standalone archives (pbs.py, catalogue.py) or a local prefix (relocate.py)."""
