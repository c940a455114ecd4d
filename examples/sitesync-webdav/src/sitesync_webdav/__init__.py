"""sitesync-webdav: a sitesync provider for WebDAV shares (see README.md)."""

from sitesync_webdav.provider import WebDAVConfig, WebDAVProvider

__all__ = ["WebDAVConfig", "WebDAVProvider"]
