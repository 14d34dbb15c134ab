"""runenv: relocatable Python runtime tarballs from one declarative workspace."""

__version__ = "0.1.0"
