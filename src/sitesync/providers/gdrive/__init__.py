"""The Google Drive provider (``gdrive``); see ``provider`` and ``docs/providers/gdrive.md``."""

from sitesync.providers.gdrive.config import GoogleDriveConfig
from sitesync.providers.gdrive.provider import GoogleDriveProvider

__all__ = ["GoogleDriveConfig", "GoogleDriveProvider"]
