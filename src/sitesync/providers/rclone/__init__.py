"""The rclone provider (``rclone``); see ``provider`` and ``docs/providers/rclone.md``."""

from sitesync.providers.rclone.config import RcloneConfig
from sitesync.providers.rclone.provider import RcloneProvider

__all__ = ["RcloneConfig", "RcloneProvider"]
