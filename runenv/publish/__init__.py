"""Publish built artifacts to a directory, an HTTP/WebDAV store or an OCI registry, with a catalogue."""

from runenv.publish.publisher import PublishItem, PublishReport, decide, not_built, plan_item, publish
from runenv.publish.targets.base import Target
from runenv.publish.targets.registry import open_target

__all__ = ["PublishItem", "PublishReport", "Target", "decide", "not_built", "open_target", "plan_item", "publish"]
