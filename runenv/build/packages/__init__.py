"""The package stages: resolve and lock (lock.py, resolve.py, lockcheck.py, fallbacks.py), build from source
(sdist.py, vcs.py, repair.py), install and byte-compile into cached trees (assemble.py, trees.py, bytecode.py,
layers.py), the distutils shim and the closure check."""
