"""One build of one (runtime, platform), by stage: pipeline.py calls them in order.

interpreter/ provisions the interpreter prefix, packages/ locks, fetches, builds and installs the packages,
pack.py writes the tarball, verify/ checks it; manifest.py, reuse.py, hooks.py and buildlog.py serve them.
"""
