"""Options of a Google Drive site (``provider = "gdrive"``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator

from sitesync.providers._cloud import PlatformPath, check_platform_path
from sitesync.providers.base import Destination, LocalOnly, ProviderConfig

UPLOAD_GRANULARITY = 256 * 1024  # Drive requires resumable chunks in multiples of 256 KiB
MIB = 1024 * 1024


class GoogleDriveConfig(ProviderConfig):
    credentials: Annotated[PlatformPath | None, LocalOnly("names a file the service reads credentials from")] = None
    """Path of the service account's JSON key file, for every platform or per platform
    (``{linux = "...", windows = "..."}``); ``{ENV_VAR}`` placeholders are expanded. Read when
    needed, never copied into the database."""
    credentials_json: SecretStr | None = None
    """Instead of ``credentials``: the key file's content as a secret (``env:NAME`` or ``file:PATH``)."""
    impersonate: str | None = None
    """Act as this Google Workspace user (domain-wide delegation), e.g. to use that user's My Drive."""
    folder_id: str | None = None
    """Id of the destination folder (the last part of its URL), in My Drive or in a shared drive.
    A shared drive's own id names its top folder."""
    folder: str | None = None
    """Instead of ``folder_id``: ``My Drive/a/b`` or ``<shared drive name>/a/b``."""
    chunk_size: int = Field(16 * MIB, ge=UPLOAD_GRANULARITY, le=1024 * MIB)
    """Bytes per resumable upload request and per download request (a multiple of 256 KiB)."""
    multipart_max: int = Field(5 * MIB, ge=0, le=64 * MIB)
    """Files up to this size are sent in one request (held in memory); bigger ones are resumable."""
    max_retry_wait: float = Field(60.0, ge=0.0, le=3600.0)
    """Seconds one request may spend waiting for a throttled or failing Drive before giving up."""
    trash: bool = True
    """Deleting moves files to Drive's trash (recoverable for 30 days) instead of deleting them."""
    check_md5: bool = True
    """Compare Drive's md5Checksum of an uploaded file with the md5 of the bytes sent."""
    endpoint: Annotated[str | None, Destination(("credentials", "credentials_json"))] = None
    """Base URL of the Drive API (default ``https://www.googleapis.com/``); for a proxy or a test server."""
    timeout: float = Field(120.0, gt=0.0)
    """Seconds to wait for any one network read."""

    @field_validator("credentials", mode="before")
    @classmethod
    def _platform_path(cls, value: Any) -> Any:
        return check_platform_path(value)

    @field_validator("chunk_size")
    @classmethod
    def _granular(cls, value: int) -> int:
        if value % UPLOAD_GRANULARITY:
            raise ValueError("must be a multiple of 262144 (256 KiB), e.g. 8388608 for 8 MiB")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://www.googleapis.com/")
        return value

    @model_validator(mode="after")
    def _one_of_each(self) -> GoogleDriveConfig:
        if (self.credentials is None) == (self.credentials_json is None):
            raise ValueError("set exactly one of credentials (path of the key file) or credentials_json")
        if (self.folder_id is None) == (self.folder is None):
            raise ValueError("set exactly one of folder_id or folder (the destination folder)")
        if self.folder is not None and not [p for p in self.folder.split("/") if p]:
            raise ValueError("folder must name a folder, e.g. 'My Drive/sitesync' or 'Shared Drive Name/sitesync'")
        return self
