"""Builders of wheels, indexes, interpreter archives and servers that tests share; fixtures load as plugins."""

from runenv.platforms import PlatformKey, host_platform_key

HOST: PlatformKey = host_platform_key() or "linux-x64"  # the platform the tests run on (the archives hold its Python)
