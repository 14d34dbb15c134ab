"""Publish targets: `base` (the protocol), one module per kind, and `registry` (by URL scheme).

Kept empty of imports so a target module importing `base` never loads the registry (and so the other targets).
"""
